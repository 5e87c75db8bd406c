// Command busyboximage writes an offline OCI image archive of a static
// busybox (test/clients.WriteImageArchive), named
// localhost/gantry-busybox:latest, for `gantry import`: the demo and the
// end-to-end tests build their busybox image with it, without a registry.
//
//	go run ./test/busyboximage -o busybox.tar [-busybox /bin/busybox]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gantry-project/gantry/test/clients"
)

func main() {
	out := flag.String("o", "busybox-oci.tar", "archive to write")
	busybox := flag.String("busybox", "/bin/busybox", "statically linked busybox binary (Debian: busybox-static)")
	flag.Parse()
	if err := clients.WriteImageArchive(*out, *busybox); err != nil {
		fmt.Fprintln(os.Stderr, "busyboximage:", err)
		os.Exit(1)
	}
	fmt.Println(clients.ImageName)
}
