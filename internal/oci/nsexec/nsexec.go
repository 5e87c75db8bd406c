package nsexec

/*
#cgo CFLAGS: -Wall -O2
extern void gantry_nsexec(void);
void __attribute__((constructor)) gantry_nsexec_init(void) { gantry_nsexec(); }
*/
import "C"
