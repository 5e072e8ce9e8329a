// Command etcd is the etcd server, built from the published
// go.etcd.io/etcd/server/v3 module (whose etcdmain package holds the whole
// command-line entry point) at the version k8s.io/kubernetes itself pins.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
