/*
 * Shared by nsexec.c (namespaces, cgroups, the clone into the PID
 * namespace) and execproc.c (the exec fast path: process attributes and
 * execve, with no Go runtime).
 */
#ifndef GANTRY_NSEXEC_H
#define GANTRY_NSEXEC_H

#include <stddef.h>
#include <stdint.h>

/* the bootstrap socket; -1 until known */
extern int gantry_sockfd;

/* write_all writes buf to the socket, or exits */
void gantry_write_all(const char *buf, size_t len);

/* a trace line on stderr when GANTRY_OCI_TRACE is set (see trace.go) */
void gantry_trace(const char *what);

/* struct exec_plan is the decoded exec section (see execproc.c) */
struct exec_rlimit {
	uint32_t resource;
	uint64_t soft, hard;
	const char *name;
};

struct exec_plan {
	uint32_t flags;
	int32_t preserve_fds;
	int32_t oom_score_adj;
	uint32_t uid, gid, umask;
	uint32_t cap_last;
	uint64_t cap_bnd, cap_eff, cap_prm, cap_inh, cap_amb;
	uint32_t ngroups;
	uint32_t *groups;
	uint32_t nrlimits;
	struct exec_rlimit *rlimits;
	uint64_t seccomp_flags;
	uint32_t seccomp_len; /* instructions */
	void *seccomp_prog;   /* seccomp_len struct sock_filter */
	const char *cwd, *cwd_quoted, *arg0_quoted;
	uint32_t nargs, nenv;
	char **argv; /* NULL-terminated */
	char **envp; /* NULL-terminated, with room for one more entry (HOME) */
};

/*
 * exec_plan_decode parses the exec section of len bytes at buf (kept: the
 * plan points into it). Returns 0, or -1 with a static reason in *why.
 */
int gantry_exec_plan_decode(struct exec_plan *p, char *buf, size_t len, const char **why);

/* exec_run applies the plan and executes the process; it never returns */
void gantry_exec_run(struct exec_plan *p) __attribute__((noreturn));

#endif
