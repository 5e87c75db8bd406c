// Package sched applies the runtime-spec scheduling attributes of a process:
// process.scheduler (sched_setattr), process.ioPriority (ioprio_set),
// process.execCPUAffinity (sched_setaffinity), linux.personality and
// process.oomScoreAdj. The Validate functions are pure and check a config
// before anything is created; the Set functions act on a pid, where 0 means
// the calling thread (scheduler, I/O priority, affinity) or process.
package sched
