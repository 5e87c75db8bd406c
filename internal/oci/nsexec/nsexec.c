/*
 * nsexec: the part of gantry-oci that must run before the Go runtime starts.
 *
 * The kernel refuses setns(2) into a user or mount namespace, and unshare(2)
 * of them, from a multi-threaded process, and the Go runtime starts threads
 * before main. So when gantry-oci is started as a container's bootstrap
 * process (the environment variable _GANTRY_INIT_FD names a socket), this
 * constructor runs first, joins and creates the namespaces, and returns to Go
 * (which then runs the "init" command) in the final process.
 *
 * Protocol on the socket (SOCK_STREAM, text lines; "P" is the parent
 * gantry-oci, "C" this bootstrap process, "G" its child in the new PID
 * namespace):
 *
 *   P -> C  the bootstrap message: lines "key value", ended by an empty line.
 *             clone <hex>        namespaces to create (CLONE_NEW* flags)
 *             join <type> <path> a namespace to join (type: user, mnt, pid,
 *                                net, ipc, uts, cgroup, time); any number,
 *                                applied in the order given, user first
 *             timens <line>      one line for /proc/self/timens_offsets
 *             fork 1             clone a child (needed for a PID namespace)
 *             keep <fd>          an fd to keep open; every other fd from 3
 *                                up (but the socket) is closed at once
 *             cgroup1 <dir>      a cgroup v1 directory to enter (any number)
 *             cgroup2 <dir>      the cgroup v2 directory to enter
 *             exec <n>           the exec fast path: n bytes of a binary
 *                                exec section follow the empty line (its
 *                                format is at the top of execproc.c)
 *   C -> P  "usermap <pid>\n"    after unshare(CLONE_NEWUSER): P writes the
 *                                uid/gid maps of <pid>, then answers
 *   P -> C  "ok\n"
 *   C -> P  "pid <pid>\n"        the pid (in P's PID namespace) of the
 *                                process that becomes the container's init;
 *                                C exits right after when it forked
 *   C -> P  "error <text>\n"     on any failure, then C exits 1
 *
 * Everything else (mounts, cgroups, capabilities, seccomp) is done in Go by
 * the init command, which continues on the same socket with binary messages
 * (internal/oci/container/initmsg.go).
 * With an exec section there is no Go init: the final process applies the
 * process attributes itself (execproc.c) and then
 *   C -> P  "error <text>\n"     on a failure (before or after the pid line)
 *   or EOF                      the socket is close-on-exec: the process is
 *                               executed
 *
 * The process is made non-dumpable first thing, so that nothing in the
 * container can ptrace it or open its /proc files while it holds the
 * runtime's fds (CVE-2016-9962); execve makes the user's process dumpable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "nsexec.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

#define MAX_MSG (64 * 1024)
#define MAX_EXEC_SECTION (16 * 1024 * 1024)
#define MAX_JOIN 16
#define MAX_KEEP 1024
#define MAX_CGROUP 32

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* struct clone_args of clone3(2), version 2 (with cgroup) */
struct gantry_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

int gantry_sockfd = -1;
#define sockfd gantry_sockfd
static int tracing;

static void bail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

void gantry_write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(sockfd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		buf += n;
		len -= (size_t)n;
	}
}
#define write_all gantry_write_all

void gantry_trace(const char *what)
{
	struct timespec ts;
	char line[256];
	if (!tracing)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	int n = snprintf(line, sizeof(line), "trace %ld.%06ld [%d] %s\n", (long)(ts.tv_sec % 100), ts.tv_nsec / 1000, getpid(), what);
	if (n > 0 && write(2, line, (size_t)n) < 0) {
		/* tracing is best effort */
	}
}

static void bail(const char *fmt, ...)
{
	char msg[1024];
	int saved = errno;
	va_list ap;
	int n = snprintf(msg, sizeof(msg), "error nsexec: ");
	va_start(ap, fmt);
	n += vsnprintf(msg + n, sizeof(msg) - n - 2, fmt, ap);
	va_end(ap);
	if (saved != 0 && n < (int)sizeof(msg) - 64)
		n += snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	if (n > (int)sizeof(msg) - 2)
		n = sizeof(msg) - 2;
	msg[n++] = '\n';
	if (sockfd >= 0)
		write_all(msg, (size_t)n);
	_exit(1);
}

/*
 * read_message reads the bootstrap message into buf until it holds the
 * empty line that ends the text part; bytes read past it (the start of an
 * exec section) stay in buf after it. Returns the length of the text part
 * (with the empty line); *total is the number of bytes read.
 */
static size_t read_message(char *buf, size_t cap, size_t *total)
{
	size_t len = 0;
	for (;;) {
		ssize_t n;
		char *end;
		if (len >= cap - 1) {
			errno = 0;
			bail("bootstrap message larger than %d bytes", MAX_MSG);
		}
		n = read(sockfd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			bail("read bootstrap message");
		}
		if (n == 0) {
			errno = 0;
			bail("parent closed the socket");
		}
		len += (size_t)n;
		buf[len] = '\0';
		/* the text part holds no NUL: strstr stops at the binary part at the latest */
		end = strstr(buf, "\n\n");
		if (end != NULL) {
			*total = len;
			return (size_t)(end + 2 - buf);
		}
	}
}

/* read_exec_section reads the exec section of len bytes, of which have are in buf */
static char *read_exec_section(const char *buf, size_t have, size_t len)
{
	char *sec;
	if (len > MAX_EXEC_SECTION || have > len) {
		errno = 0;
		bail("exec section of %zu bytes (have %zu, at most %d)", len, have, MAX_EXEC_SECTION);
	}
	sec = malloc(len + 1);
	if (sec == NULL)
		bail("allocate exec section");
	memcpy(sec, buf, have);
	while (have < len) {
		ssize_t n = read(sockfd, sec + have, len - have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			bail("read exec section");
		}
		if (n == 0) {
			errno = 0;
			bail("parent closed the socket");
		}
		have += (size_t)n;
	}
	return sec;
}

/* read_until reads into buf until it ends with end (a string) */
static size_t read_until(char *buf, size_t cap, const char *end)
{
	size_t len = 0, elen = strlen(end);
	for (;;) {
		ssize_t n;
		if (len >= cap - 1) {
			errno = 0;
			bail("bootstrap message larger than %d bytes", MAX_MSG);
		}
		n = read(sockfd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			bail("read bootstrap message");
		}
		if (n == 0) {
			errno = 0;
			bail("parent closed the socket");
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (len >= elen && strcmp(buf + len - elen, end) == 0)
			return len;
	}
}

static int ns_flag(const char *type)
{
	static const struct {
		const char *name;
		int flag;
	} t[] = {
		{ "user", CLONE_NEWUSER }, { "mnt", CLONE_NEWNS },	  { "pid", CLONE_NEWPID },
		{ "net", CLONE_NEWNET },   { "ipc", CLONE_NEWIPC },	  { "uts", CLONE_NEWUTS },
		{ "cgroup", CLONE_NEWCGROUP }, { "time", CLONE_NEWTIME },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, type) == 0)
			return t[i].flag;
	return 0;
}

/*
 * join_all opens every namespace first, then joins them, user first: once
 * the mount namespace is joined, /proc/PID paths would resolve in the
 * container.
 */
static void join_all(char *joins[][2], int njoin)
{
	int fds[MAX_JOIN];
	for (int i = 0; i < njoin; i++) {
		fds[i] = open(joins[i][1], O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			bail("open %s namespace %s", joins[i][0], joins[i][1]);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < njoin; i++) {
			int is_user = strcmp(joins[i][0], "user") == 0;
			if ((pass == 0) != is_user)
				continue;
			if (setns(fds[i], ns_flag(joins[i][0])) < 0)
				bail("join %s namespace %s", joins[i][0], joins[i][1]);
			close(fds[i]);
		}
	}
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		bail("open %s", path);
	if (write(fd, data, strlen(data)) != (ssize_t)strlen(data))
		bail("write %s", path);
	close(fd);
}

/*
 * enter_cgroups puts this (single-threaded) process into its cgroups.
 * Moving the calling thread by writing "0" to a v1 "tasks" file is the
 * kernel's fast path: it skips the global cgroup_threadgroup_rwsem, whose
 * write side waits for an RCU grace period (10-30 ms here) when a pid is
 * written to cgroup.procs from outside. With one thread, moving the
 * thread moves the process. The v2 directory is entered by clone3 with
 * CLONE_INTO_CGROUP (the same fast path) when we fork, else through
 * cgroup.procs. Returns the v2 directory's fd, or -1.
 */
static int enter_cgroups(char **v1, int nv1, const char *v2, int fork_later)
{
	char path[4096];
	int cg2fd = -1;
	for (int i = 0; i < nv1; i++) {
		snprintf(path, sizeof(path), "%s/tasks", v1[i]);
		write_file(path, "0");
	}
	if (v2 == NULL)
		return -1;
	if (fork_later) {
		cg2fd = open(v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg2fd < 0)
			bail("open cgroup %s", v2);
		return cg2fd;
	}
	snprintf(path, sizeof(path), "%s/cgroup.procs", v2);
	write_file(path, "0");
	return -1;
}

/* close_unkept closes every fd from 3 up that keep does not mark. */
static void close_unkept(const char *keep)
{
	unsigned int lo = 3;
	for (unsigned int fd = 3; fd < MAX_KEEP; fd++) {
		if (!keep[fd])
			continue;
		if (fd > lo && syscall(SYS_close_range, lo, fd - 1, 0) < 0)
			bail("close inherited fds %u-%u", lo, fd - 1);
		lo = fd + 1;
	}
	if (syscall(SYS_close_range, lo, ~0U, 0) < 0)
		bail("close inherited fds from %u", lo);
}

void gantry_nsexec(void)
{
	static char msg[MAX_MSG];
	char *joins[MAX_JOIN][2];
	char *timens[16];
	int njoin = 0, ntimens = 0, do_fork = 0, ncg1 = 0, cg2fd = -1;
	char *cg1[MAX_CGROUP];
	char *cg2 = NULL;
	static char keep[MAX_KEEP];
	unsigned long clone_flags = 0;
	const char *env = getenv("_GANTRY_INIT_FD");
	char *line, *save = NULL;
	size_t text_len, total, exec_len = 0;
	int has_exec = 0;
	static struct exec_plan plan;

	if (env == NULL || *env == '\0')
		return;
	sockfd = atoi(env);
	if (sockfd < 3 || fcntl(sockfd, F_GETFD) < 0)
		return;
	/* Nothing in the container may ptrace us or open our /proc files. */
	prctl(PR_SET_DUMPABLE, 0);
	tracing = getenv("GANTRY_OCI_TRACE") != NULL;
	gantry_trace("bootstrap: C start");
	/* A dying parent closes the socket: every read below then fails. */
	text_len = read_message(msg, sizeof(msg), &total);
	{
		/* an exec section follows the text part; find its length first */
		const char *x = strstr(msg, "\nexec ");
		if (x != NULL && x < msg + text_len) {
			char *end;
			errno = 0;
			exec_len = strtoul(x + 6, &end, 10);
			if (errno != 0 || *end != '\n')
				bail("bad exec line");
			has_exec = 1;
		} else if (total > text_len) {
			errno = 0;
			bail("%zu bytes after the bootstrap message", total - text_len);
		}
	}
	if (has_exec) {
		const char *why = NULL;
		char *sec = read_exec_section(msg + text_len, total - text_len, exec_len);
		if (gantry_exec_plan_decode(&plan, sec, exec_len, &why) < 0) {
			errno = 0;
			bail("%s", why);
		}
	}
	msg[text_len] = '\0';
	gantry_trace("bootstrap: message read");
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *val = strchr(line, ' ');
		if (val == NULL)
			continue;
		*val++ = '\0';
		if (strcmp(line, "clone") == 0) {
			clone_flags = strtoul(val, NULL, 16);
		} else if (strcmp(line, "join") == 0) {
			char *path = strchr(val, ' ');
			if (path == NULL || njoin == MAX_JOIN) {
				errno = 0;
				bail("bad join line");
			}
			*path++ = '\0';
			if (ns_flag(val) == 0) {
				errno = 0;
				bail("unknown namespace type %s", val);
			}
			joins[njoin][0] = val;
			joins[njoin][1] = path;
			njoin++;
		} else if (strcmp(line, "timens") == 0) {
			if (ntimens < 16)
				timens[ntimens++] = val;
		} else if (strcmp(line, "fork") == 0) {
			do_fork = atoi(val);
		} else if (strcmp(line, "cgroup1") == 0) {
			if (ncg1 < MAX_CGROUP)
				cg1[ncg1++] = val;
		} else if (strcmp(line, "cgroup2") == 0) {
			cg2 = val;
		} else if (strcmp(line, "exec") == 0) {
			/* read above */
		} else if (strcmp(line, "keep") == 0) {
			int fd = atoi(val);
			if (fd >= 3 && fd < MAX_KEEP)
				keep[fd] = 1;
		}
	}
	/*
	 * Close every fd the parent did not name (and ours): whatever the
	 * caller leaked to gantry-oci must not reach the container, not even
	 * for an instant (CVE-2024-21626: a host directory fd used as cwd).
	 */
	keep[sockfd] = 1;
	close_unkept(keep);

	/*
	 * Cgroups first: before a joined mount namespace changes what
	 * /sys/fs/cgroup is, and before a user namespace takes away the
	 * right to write the host's cgroup files.
	 */
	{
		/*
		 * clone3(CLONE_INTO_CGROUP) checks the right to write the
		 * cgroup with the credentials of the clone's caller: from
		 * inside a user namespace that fails (EACCES). Then the v2
		 * cgroup is entered now, through cgroup.procs.
		 */
		int userns = (clone_flags & CLONE_NEWUSER) != 0;
		for (int i = 0; i < njoin; i++)
			if (strcmp(joins[i][0], "user") == 0)
				userns = 1;
		cg2fd = enter_cgroups(cg1, ncg1, cg2, do_fork && !userns);
	}

	gantry_trace("bootstrap: cgroups entered");
	/* A joined user namespace comes first: it owns the others. */
	join_all(joins, njoin);

	if (clone_flags & CLONE_NEWUSER) {
		char buf[64];
		if (unshare(CLONE_NEWUSER) < 0)
			bail("create user namespace");
		/* the parent must be able to open our /proc/PID files */
		prctl(PR_SET_DUMPABLE, 1);
		snprintf(buf, sizeof(buf), "usermap %d\n", getpid());
		write_all(buf, strlen(buf));
		read_until(buf, sizeof(buf), "\n");
		if (strcmp(buf, "ok\n") != 0) {
			errno = 0;
			bail("user namespace mapping refused by parent");
		}
		prctl(PR_SET_DUMPABLE, 0);
		if (setresgid(0, 0, 0) < 0)
			bail("setresgid 0 in user namespace");
		if (setresuid(0, 0, 0) < 0)
			bail("setresuid 0 in user namespace");
	}

	/*
	 * A new cgroup namespace is rooted at the cgroups of its creator:
	 * when the init enters its v2 cgroup at clone time, it creates the
	 * namespace itself, after the clone.
	 */
	unsigned long now = clone_flags & ~(unsigned long)CLONE_NEWUSER;
	if (do_fork)
		now &= ~(unsigned long)CLONE_NEWCGROUP;
	if (now) {
		if (unshare((int)now) < 0)
			bail("create namespaces (flags %#lx)", now);
	}
	if (clone_flags & CLONE_NEWTIME) {
		for (int i = 0; i < ntimens; i++)
			write_file("/proc/self/timens_offsets", timens[i]);
	}

	gantry_trace("bootstrap: namespaces made");
	if (do_fork) {
		char buf[64];
		/*
		 * CLONE_PARENT: the child becomes a sibling, a child of the parent
		 * gantry-oci, so that "run" can wait for it directly.
		 */
		struct gantry_clone_args args = { 0 };
		pid_t pid;
		args.flags = CLONE_PARENT;
		/* with CLONE_PARENT the kernel gives the child our own exit signal */
		args.exit_signal = 0;
		if (cg2fd >= 0) {
			args.flags |= CLONE_INTO_CGROUP;
			args.cgroup = (uint64_t)cg2fd;
		}
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid < 0 && (errno == ENOSYS || errno == E2BIG)) {
			/* kernel before 5.7: plain clone, then enter through cgroup.procs */
			pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
			if (pid == 0 && cg2 != NULL) {
				char path[4096];
				snprintf(path, sizeof(path), "%s/cgroup.procs", cg2);
				write_file(path, "0");
			}
		}
		if (pid < 0)
			bail("clone container init");
		if (pid > 0) {
			gantry_trace("bootstrap: init cloned");
			snprintf(buf, sizeof(buf), "pid %d\n", pid);
			write_all(buf, strlen(buf));
			_exit(0);
		}
		/* child: the container's init (PID 1 of a new PID namespace) */
		if (cg2fd >= 0)
			close(cg2fd);
		if ((clone_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
			bail("create cgroup namespace");
	} else {
		char buf[64];
		snprintf(buf, sizeof(buf), "pid %d\n", getpid());
		write_all(buf, strlen(buf));
	}
	if (has_exec)
		gantry_exec_run(&plan);
	/* return to the Go runtime, which runs the init command */
}
