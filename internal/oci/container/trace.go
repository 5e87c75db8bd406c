package container

import (
	"fmt"
	"os"
	"time"
)

// GANTRY_OCI_TRACE=1 prints the time of each phase of create and init to
// stderr, for docs/performance.md. It costs nothing when unset.
var traceOn = os.Getenv("GANTRY_OCI_TRACE") != ""

func tracef(format string, args ...any) {
	if traceOn {
		fmt.Fprintf(os.Stderr, "trace %d.%06d [%d] %s\n", time.Now().Unix()%100, time.Now().Nanosecond()/1000, os.Getpid(), fmt.Sprintf(format, args...))
	}
}
