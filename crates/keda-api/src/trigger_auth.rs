//! TriggerAuthentication and ClusterTriggerAuthentication: where scalers get their secrets.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::BTreeMap;

/// TriggerAuthenticationSpec defines the various ways to authenticate.
#[skip_serializing_none]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "TriggerAuthentication",
    namespaced,
    status = "TriggerAuthenticationStatus",
    shortname = "ta",
    shortname = "triggerauth",
    derive = "PartialEq",
    doc = "TriggerAuthentication defines how a trigger can authenticate",
    printcolumn = r#"{"name":"PodIdentity","type":"string","jsonPath":".spec.podIdentity.provider"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".spec.secretTargetRef[*].name"}"#,
    printcolumn = r#"{"name":"Env","type":"string","jsonPath":".spec.env[*].name"}"#,
    printcolumn = r#"{"name":"VaultAddress","type":"string","jsonPath":".spec.hashiCorpVault.address"}"#,
    printcolumn = r#"{"name":"ScaledObjects","type":"string","priority":1,"jsonPath":".status.scaledobjects"}"#,
    printcolumn = r#"{"name":"ScaledJobs","type":"string","priority":1,"jsonPath":".status.scaledjobs"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TriggerAuthenticationSpec {
    /// Identity of the pod used to authenticate (workload identity of a cloud).
    pub pod_identity: Option<AuthPodIdentity>,
    /// Parameters read from Secrets (in the object's namespace; for ClusterTriggerAuthentication, in KEDA's).
    pub secret_target_ref: Option<Vec<AuthSecretTargetRef>>,
    /// Parameters read from ConfigMaps.
    pub config_map_target_ref: Option<Vec<AuthConfigMapTargetRef>>,
    /// Parameters read from the scale target's container environment.
    pub env: Option<Vec<AuthEnvironment>>,
    /// A JSON file of parameters, only under the operator flag `--filepath-auth-root-path`.
    pub file_path: Option<String>,
    /// Parameters read from HashiCorp Vault.
    pub hashi_corp_vault: Option<HashiCorpVault>,
    /// Parameters read from Azure Key Vault.
    pub azure_key_vault: Option<AzureKeyVault>,
    /// Parameters read from GCP Secret Manager.
    pub gcp_secret_manager: Option<GcpSecretManager>,
    /// Parameters read from AWS Secrets Manager.
    pub aws_secret_manager: Option<AwsSecretManager>,
    /// Parameters filled with bound service account tokens (TokenRequest).
    pub bound_service_account_token: Option<Vec<BoundServiceAccountToken>>,
    /// An OAuth2 client-credentials token.
    pub oauth2: Option<OAuth2>,
}

/// ClusterTriggerAuthentication has exactly the TriggerAuthentication spec, cluster-scoped; its Secrets and
/// ConfigMaps are read from KEDA's namespace (`KEDA_CLUSTER_OBJECT_NAMESPACE`).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ClusterTriggerAuthentication",
    status = "TriggerAuthenticationStatus",
    shortname = "cta",
    shortname = "clustertriggerauth",
    derive = "PartialEq",
    doc = "ClusterTriggerAuthentication defines how a trigger can authenticate globally",
    printcolumn = r#"{"name":"PodIdentity","type":"string","jsonPath":".spec.podIdentity.provider"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".spec.secretTargetRef[*].name"}"#,
    printcolumn = r#"{"name":"Env","type":"string","jsonPath":".spec.env[*].name"}"#,
    printcolumn = r#"{"name":"FilePath","type":"string","jsonPath":".spec.filePath"}"#,
    printcolumn = r#"{"name":"VaultAddress","type":"string","jsonPath":".spec.hashiCorpVault.address"}"#,
    printcolumn = r#"{"name":"ScaledObjects","type":"string","priority":1,"jsonPath":".status.scaledobjects"}"#,
    printcolumn = r#"{"name":"ScaledJobs","type":"string","priority":1,"jsonPath":".status.scaledjobs"}"#
)]
#[serde(transparent)]
pub struct ClusterTriggerAuthenticationSpec(pub TriggerAuthenticationSpec);

impl std::ops::Deref for ClusterTriggerAuthenticationSpec {
    type Target = TriggerAuthenticationSpec;
    fn deref(&self) -> &TriggerAuthenticationSpec {
        &self.0
    }
}

/// Users of the authentication object, maintained by the ScaledObject and ScaledJob controllers.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TriggerAuthenticationStatus {
    /// Comma-joined names of the ScaledObjects that use this object.
    #[serde(rename = "scaledobjects")]
    pub scaled_objects: Option<String>,
    /// Comma-joined names of the ScaledJobs that use this object.
    #[serde(rename = "scaledjobs")]
    pub scaled_jobs: Option<String>,
}

/// Pod identity providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PodIdentityProvider {
    #[serde(rename = "azure-workload")]
    AzureWorkload,
    #[serde(rename = "gcp")]
    Gcp,
    #[serde(rename = "aws")]
    Aws,
    /// Deprecated alias of `aws`.
    #[serde(rename = "aws-eks")]
    AwsEks,
    #[serde(rename = "none")]
    None,
}

/// Who owns the AWS identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IdentityOwner {
    Keda,
    Workload,
}

/// AuthPodIdentity allows users to select the platform native identity mechanism.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthPodIdentity {
    /// `azure-workload`, `gcp`, `aws`, `aws-eks` (deprecated) or `none`.
    pub provider: PodIdentityProvider,
    /// Client id of the Azure identity.
    pub identity_id: Option<String>,
    /// Tenant id of the Azure identity.
    pub identity_tenant_id: Option<String>,
    /// Authority host of the Azure identity (requires identityTenantId).
    pub identity_authority_host: Option<String>,
    /// AWS role to assume.
    pub role_arn: Option<String>,
    /// External id for the AWS role (requires roleArn).
    #[serde(rename = "externalID")]
    pub external_id: Option<String>,
    /// `keda` or `workload`: whose AWS identity is used.
    pub identity_owner: Option<IdentityOwner>,
}

/// A parameter read from a key of a Secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuthSecretTargetRef {
    /// Scaler parameter to fill.
    pub parameter: String,
    /// Secret name.
    pub name: String,
    /// Key in the Secret.
    pub key: String,
}

/// A parameter read from a key of a ConfigMap.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuthConfigMapTargetRef {
    /// Scaler parameter to fill.
    pub parameter: String,
    /// ConfigMap name.
    pub name: String,
    /// Key in the ConfigMap.
    pub key: String,
}

/// A parameter read from the scale target's container environment.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthEnvironment {
    /// Scaler parameter to fill.
    pub parameter: String,
    /// Environment variable name.
    pub name: String,
    /// Container to read; default: the target's env source container.
    pub container_name: Option<String>,
}

/// HashiCorp Vault authentication methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VaultAuthentication {
    Token,
    Kubernetes,
}

/// HashiCorpVault is used to authenticate using Hashicorp Vault.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashiCorpVault {
    /// Vault address.
    pub address: String,
    /// `token` or `kubernetes`.
    pub authentication: VaultAuthentication,
    /// Secrets to read.
    #[schemars(length(min = 1))]
    pub secrets: Vec<VaultSecret>,
    /// Vault namespace.
    pub namespace: Option<String>,
    /// Credential for the authentication method.
    pub credential: Option<VaultCredential>,
    /// Role for kubernetes authentication.
    pub role: Option<String>,
    /// Mount path of the auth method.
    pub mount: Option<String>,
}

/// Credential used to log in to Vault.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultCredential {
    pub token: Option<String>,
    pub service_account: Option<String>,
    pub service_account_name: Option<String>,
}

/// Vault secret engine kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum VaultSecretType {
    #[serde(rename = "")]
    Unset,
    #[serde(rename = "secretV2")]
    SecretV2,
    #[serde(rename = "secret")]
    Secret,
    #[serde(rename = "pki")]
    Pki,
}

/// One parameter read from Vault.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultSecret {
    pub parameter: String,
    pub path: String,
    pub key: String,
    /// `""`, `secretV2`, `secret` or `pki`.
    pub r#type: Option<VaultSecretType>,
    /// Certificate request for the `pki` engine.
    pub pki_data: Option<VaultPkiData>,
}

/// Certificate request for Vault's PKI engine.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultPkiData {
    pub common_name: Option<String>,
    pub alt_names: Option<String>,
    pub ip_sans: Option<String>,
    pub uri_sans: Option<String>,
    pub other_sans: Option<String>,
    pub ttl: Option<String>,
    pub format: Option<String>,
}

/// A value taken from a Secret key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFromSecret {
    pub value_from: ValueFrom,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    pub secret_key_ref: SecretKeyRef,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// AzureKeyVault is used to authenticate using Azure Key Vault.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVault {
    pub vault_uri: String,
    #[schemars(length(min = 1))]
    pub secrets: Vec<AzureKeyVaultSecret>,
    pub credentials: Option<AzureKeyVaultCredentials>,
    pub pod_identity: Option<AuthPodIdentity>,
    pub cloud: Option<AzureKeyVaultCloudInfo>,
}

#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AzureKeyVaultSecret {
    pub parameter: String,
    pub name: String,
    pub version: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultCredentials {
    pub client_id: String,
    pub tenant_id: String,
    pub client_secret: ValueFromSecret,
}

#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultCloudInfo {
    pub r#type: String,
    #[serde(rename = "keyVaultResourceURL")]
    pub key_vault_resource_url: Option<String>,
    pub active_directory_endpoint: Option<String>,
}

/// GCPSecretManager is used to authenticate using GCP Secret Manager.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpSecretManager {
    #[schemars(length(min = 1))]
    pub secrets: Vec<GcpSecretManagerSecret>,
    pub credentials: Option<GcpCredentials>,
    pub pod_identity: Option<AuthPodIdentity>,
}

#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GcpSecretManagerSecret {
    pub parameter: String,
    pub id: String,
    pub version: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpCredentials {
    pub client_secret: ValueFromSecret,
}

/// AwsSecretManager is used to authenticate using AWS Secrets Manager.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManager {
    #[schemars(length(min = 1))]
    pub secrets: Vec<AwsSecretManagerSecret>,
    pub credentials: Option<AwsSecretManagerCredentials>,
    pub pod_identity: Option<AuthPodIdentity>,
    pub region: Option<String>,
}

#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManagerSecret {
    pub parameter: String,
    pub name: String,
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
    pub secret_key: Option<String>,
}

#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManagerCredentials {
    pub access_key: ValueFromSecret,
    pub access_secret_key: ValueFromSecret,
    pub access_token: Option<ValueFromSecret>,
}

/// A parameter filled with a token for a service account (TokenRequest API).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoundServiceAccountToken {
    pub parameter: String,
    pub service_account_name: String,
}

/// OAuth2 grant types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OAuth2Type {
    #[default]
    ClientCredentials,
}

/// An OAuth2 token obtained with client credentials.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2 {
    /// Grant type; only `clientCredentials`.
    #[serde(default)]
    pub r#type: OAuth2Type,
    pub client_id: String,
    pub client_secret: Option<ValueFromSecret>,
    /// Token endpoint (http or https URL).
    pub token_url: String,
    pub scopes: Option<Vec<String>>,
    pub token_url_params: Option<BTreeMap<String, String>>,
}
