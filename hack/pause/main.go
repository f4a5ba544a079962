// The pod sandbox ("pause") image's program for the real-node tests: it holds the pod's
// namespaces, reaps the zombies of its PID namespace and exits on SIGTERM/SIGINT. It exists
// because no container registry is reachable here; containerd's sandbox_image points at it.
// Built static (CGO_ENABLED=0) by hack/image.sh; the standard library only.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
