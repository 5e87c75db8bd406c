/*
 * execproc: the exec fast path. When the parent sends an exec section (see
 * nsexec.c), the process that nsexec leaves in the container's namespaces
 * does not return to the Go runtime: it applies the process attributes
 * here and executes the process, saving the start of a second Go runtime
 * and the decoding of the init's config. It does what finishProcess
 * (internal/oci/container/init.go) does for an exec, in the same order and
 * with the same error messages; the parent sends this path only what it
 * supports (no terminal, LSM label, scheduler, I/O priority, CPU affinity,
 * personality, seccomp notification or user namespace) and has already
 * checked and converted everything that can be checked without the
 * container: capability and rlimit names, the capability bounding filter,
 * the seccomp filter compiled to BPF.
 *
 * The exec section (little endian; "str" is bytes ended by a NUL):
 *
 *   u32 version (1)         u32 flags (EXEC_*)
 *   i32 preserve_fds        i32 oom_score_adj
 *   u32 uid  u32 gid  u32 umask  u32 cap_last
 *   u64 caps: bounding, effective, permitted, inheritable, ambient
 *   u32 n, n x u32          additional gids
 *   u32 n, n x (u32 resource, u64 soft, u64 hard, str type name)
 *   u64 seccomp flags, u32 n, n x 8 bytes (struct sock_filter)
 *   str cwd, str cwd quoted as Go's %q, str args[0] quoted as Go's %q
 *   u32 n, n x str          args
 *   u32 n, n x str          env
 *
 * Failures are reported as "error <text>" lines on the socket (the parent
 * prints them) before exiting 1; the socket is close-on-exec, so the parent
 * reads EOF once the process is executed. A failing execve itself is
 * reported as the Go path does: on stderr, exit status 127.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "nsexec.h"

#define EXEC_OOM 1u
#define EXEC_UMASK 2u
#define EXEC_NNP 4u
#define EXEC_HOME 8u
#define EXEC_SECCOMP 16u

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef AT_EACCESS
#define AT_EACCESS 0x200
#endif

#define CAP_VERSION_3 0x20080522
#define MAX_KNOWN_CAP 40

struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};
struct bpf_insn {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct bpf_prog {
	unsigned short len;
	struct bpf_insn *filter;
};
struct rlimit64_ {
	uint64_t cur, max;
};

static const char *const cap_names[] = {
	"CAP_CHOWN",		"CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",	  "CAP_FSETID",
	"CAP_KILL",		"CAP_SETGID",	    "CAP_SETUID",	   "CAP_SETPCAP",	  "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",	   "CAP_NET_RAW",	  "CAP_IPC_LOCK",
	"CAP_IPC_OWNER",	"CAP_SYS_MODULE",   "CAP_SYS_RAWIO",	   "CAP_SYS_CHROOT",	  "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",	"CAP_SYS_ADMIN",    "CAP_SYS_BOOT",	   "CAP_SYS_NICE",	  "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",		"CAP_SYS_TTY_CONFIG", "CAP_MKNOD",	   "CAP_LEASE",		  "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",	"CAP_SETFCAP",	    "CAP_MAC_OVERRIDE",	   "CAP_MAC_ADMIN",	  "CAP_SYSLOG",
	"CAP_WAKE_ALARM",	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",	   "CAP_PERFMON",	  "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

/* ---- decoding ---- */

struct reader {
	char *p, *end;
	int bad;
};

static uint64_t get_le(struct reader *r, int n)
{
	uint64_t v = 0;
	if (r->bad || r->end - r->p < n) {
		r->bad = 1;
		return 0;
	}
	for (int i = 0; i < n; i++)
		v |= (uint64_t)(unsigned char)r->p[i] << (8 * i);
	r->p += n;
	return v;
}

static char *get_str(struct reader *r)
{
	char *s = r->p, *nul;
	if (r->bad) {
		return NULL;
	}
	nul = memchr(r->p, '\0', (size_t)(r->end - r->p));
	if (nul == NULL) {
		r->bad = 1;
		return NULL;
	}
	r->p = nul + 1;
	return s;
}

/* get_count reads a count of items of at least min bytes each that fit */
static uint32_t get_count(struct reader *r, size_t min)
{
	uint32_t n = (uint32_t)get_le(r, 4);
	if (!r->bad && (size_t)n > (size_t)(r->end - r->p) / min)
		r->bad = 1;
	return r->bad ? 0 : n;
}

int gantry_exec_plan_decode(struct exec_plan *p, char *buf, size_t len, const char **why)
{
	struct reader r = { buf, buf + len, 0 };
	memset(p, 0, sizeof(*p));
	if (get_le(&r, 4) != 1) {
		*why = "unknown exec section version";
		return -1;
	}
	p->flags = (uint32_t)get_le(&r, 4);
	p->preserve_fds = (int32_t)get_le(&r, 4);
	p->oom_score_adj = (int32_t)get_le(&r, 4);
	p->uid = (uint32_t)get_le(&r, 4);
	p->gid = (uint32_t)get_le(&r, 4);
	p->umask = (uint32_t)get_le(&r, 4);
	p->cap_last = (uint32_t)get_le(&r, 4);
	p->cap_bnd = get_le(&r, 8);
	p->cap_eff = get_le(&r, 8);
	p->cap_prm = get_le(&r, 8);
	p->cap_inh = get_le(&r, 8);
	p->cap_amb = get_le(&r, 8);
	p->ngroups = get_count(&r, 4);
	p->groups = calloc(p->ngroups + 1, sizeof(uint32_t));
	for (uint32_t i = 0; p->groups && i < p->ngroups; i++)
		p->groups[i] = (uint32_t)get_le(&r, 4);
	p->nrlimits = get_count(&r, 21);
	p->rlimits = calloc(p->nrlimits + 1, sizeof(struct exec_rlimit));
	for (uint32_t i = 0; p->rlimits && i < p->nrlimits; i++) {
		p->rlimits[i].resource = (uint32_t)get_le(&r, 4);
		p->rlimits[i].soft = get_le(&r, 8);
		p->rlimits[i].hard = get_le(&r, 8);
		p->rlimits[i].name = get_str(&r);
	}
	p->seccomp_flags = get_le(&r, 8);
	p->seccomp_len = get_count(&r, 8);
	if (p->seccomp_len > 0xffff)
		r.bad = 1;
	p->seccomp_prog = calloc(p->seccomp_len + 1, sizeof(struct bpf_insn));
	for (uint32_t i = 0; p->seccomp_prog && i < p->seccomp_len; i++) {
		struct bpf_insn *in = (struct bpf_insn *)p->seccomp_prog + i;
		in->code = (uint16_t)get_le(&r, 2);
		in->jt = (uint8_t)get_le(&r, 1);
		in->jf = (uint8_t)get_le(&r, 1);
		in->k = (uint32_t)get_le(&r, 4);
	}
	p->cwd = get_str(&r);
	p->cwd_quoted = get_str(&r);
	p->arg0_quoted = get_str(&r);
	p->nargs = get_count(&r, 1);
	p->argv = calloc(p->nargs + 1, sizeof(char *));
	for (uint32_t i = 0; p->argv && i < p->nargs; i++)
		p->argv[i] = get_str(&r);
	p->nenv = get_count(&r, 1);
	p->envp = calloc(p->nenv + 2, sizeof(char *));
	for (uint32_t i = 0; p->envp && i < p->nenv; i++)
		p->envp[i] = get_str(&r);
	if (!p->groups || !p->rlimits || !p->seccomp_prog || !p->argv || !p->envp) {
		*why = "out of memory";
		return -1;
	}
	if (r.bad || r.p != r.end) {
		*why = "malformed exec section";
		return -1;
	}
	if (p->nargs == 0) {
		*why = "exec section without args";
		return -1;
	}
	if ((p->flags & EXEC_SECCOMP) && p->seccomp_len == 0) {
		*why = "exec section with an empty seccomp program";
		return -1;
	}
	if (p->cap_last > 63)
		p->cap_last = 63;
	return 0;
}

/* ---- errors ---- */

/* errstr is strerror as Go's syscall.Errno prints it (lower case) */
static const char *errstr(int err)
{
	static char buf[128];
	snprintf(buf, sizeof(buf), "%s", strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/* fail reports "error <text>[: <errno text>]" to the parent and exits 1 */
static void fail(int err, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail(int err, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	int n = snprintf(msg, sizeof(msg), "error ");
	va_start(ap, fmt);
	n += vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(msg) - 200)
		n = (int)sizeof(msg) - 200;
	if (err != 0)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", errstr(err));
	/* a message is one line */
	for (int i = 0; i < n; i++)
		if (msg[i] == '\n')
			msg[i] = ' ';
	msg[n++] = '\n';
	gantry_write_all(msg, (size_t)n);
	_exit(1);
}

/* quote writes s as Go's %q would for ASCII (other bytes pass through) */
static void quote(const char *s, char *out, size_t cap)
{
	size_t w = 0;
	out[w++] = '"';
	for (; *s && w + 6 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		const char *esc = NULL;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\a': esc = "\\a"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\v': esc = "\\v"; break;
		}
		if (esc) {
			w += (size_t)snprintf(out + w, cap - w, "%s", esc);
		} else if (c < 0x20 || c == 0x7f) {
			w += (size_t)snprintf(out + w, cap - w, "\\x%02x", c);
		} else {
			out[w++] = (char)c;
		}
	}
	out[w++] = '"';
	out[w] = '\0';
}

static const char *cap_name(int n, char *buf, size_t cap)
{
	if (n >= 0 && n < (int)(sizeof(cap_names) / sizeof(cap_names[0])))
		return cap_names[n];
	snprintf(buf, cap, "capability %d", n);
	return buf;
}

/* cap_list renders a set as Go's names() does: "[CAP_A CAP_B]" */
static void cap_list(uint64_t set, char *out, size_t cap)
{
	size_t w = 0;
	char nb[32];
	w += (size_t)snprintf(out + w, cap - w, "[");
	for (int n = 0; n < 64 && w < cap; n++) {
		if (!(set & (1ULL << n)))
			continue;
		w += (size_t)snprintf(out + w, cap - w, "%s%s", w > 1 ? " " : "", cap_name(n, nb, sizeof(nb)));
	}
	if (w < cap)
		snprintf(out + w, cap - w, "]");
}

/* ---- the steps of finishProcess ---- */

static void set_oom_score_adj(int adj)
{
	static const char path[] = "/proc/self/oom_score_adj";
	char buf[32];
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail(errno, "process.oomScoreAdj: open %s", path);
	int n = snprintf(buf, sizeof(buf), "%d", adj);
	if (write(fd, buf, (size_t)n) != n) {
		int err = errno;
		if (err == EACCES || err == EPERM)
			fail(err, "process.oomScoreAdj: write %d to %s (lowering needs CAP_SYS_RESOURCE): write %s", adj, path, path);
		fail(err, "process.oomScoreAdj: write %d to %s: write %s", adj, path, path);
	}
	close(fd);
}

/*
 * add_home appends HOME from the container's /etc/passwd (the root is the
 * container's now), or "/", as withHome does.
 */
static void add_home(struct exec_plan *p)
{
	char uid[16], *data = NULL, *home = "/";
	size_t len = 0, cap = 0;
	/* non-blocking, and only a regular file: a FIFO there must not block us */
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	snprintf(uid, sizeof(uid), "%u", p->uid);
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0) {
		for (;;) {
			ssize_t n;
			if (len + 4096 > cap) {
				char *nd = realloc(data, cap = cap * 2 + 8192);
				if (nd == NULL) {
					len = 0;
					break;
				}
				data = nd;
			}
			n = read(fd, data + len, cap - len - 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (n < 0)
					len = 0; /* as os.ReadFile: an error means no file */
				break;
			}
			len += (size_t)n;
		}
		close(fd);
	}
	for (size_t i = 0; data != NULL && i < len;) {
		char *line = data + i, *f[6];
		size_t l = 0;
		int nf = 1;
		while (i + l < len && line[l] != '\n')
			l++;
		i += l + 1;
		line[l] = '\0';
		/* fields 0-5; f[5] runs to the next ':' or the end */
		f[0] = line;
		for (char *c = line; *c && nf < 7; c++) {
			if (*c == ':') {
				*c = '\0';
				if (nf < 6)
					f[nf] = c + 1;
				nf++;
			}
		}
		if (nf >= 6 && strcmp(f[2], uid) == 0 && f[5][0] != '\0') {
			home = f[5];
			break;
		}
	}
	size_t hl = strlen(home) + 6;
	char *kv = malloc(hl);
	if (kv == NULL)
		fail(ENOMEM, "process.env: HOME");
	snprintf(kv, hl, "HOME=%s", home);
	p->envp[p->nenv] = kv;
	p->envp[p->nenv + 1] = NULL;
}

static void install_seccomp(struct exec_plan *p)
{
	struct bpf_prog prog = { (unsigned short)p->seccomp_len, p->seccomp_prog };
	if (syscall(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, (unsigned long)p->seccomp_flags, &prog) < 0)
		fail(errno, "linux.seccomp: seccomp(SECCOMP_SET_MODE_FILTER, 0x%llx)", (unsigned long long)p->seccomp_flags);
}

static void set_rlimits(struct exec_plan *p)
{
	for (uint32_t i = 0; i < p->nrlimits; i++) {
		struct exec_rlimit *r = &p->rlimits[i];
		struct rlimit64_ lim = { r->soft, r->hard };
		if (syscall(SYS_prlimit64, 0, r->resource, &lim, NULL) < 0)
			fail(errno, "process.rlimits[%u]: set %s to soft %llu hard %llu", i, r->name, (unsigned long long)r->soft,
			     (unsigned long long)r->hard);
	}
}

static int setgroups_denied(void)
{
	char buf[16] = { 0 };
	int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n >= 4 && strncmp(buf, "deny", 4) == 0 && (n == 4 || buf[4] == '\n');
}

/* switch_user is identity.Switch */
static void switch_user(struct exec_plan *p)
{
	if (syscall(SYS_setgroups, (size_t)p->ngroups, p->groups) < 0) {
		int err = errno;
		if (!(err == EPERM && p->ngroups == 0 && setgroups_denied())) {
			char list[1024];
			size_t w = 0;
			if (p->ngroups == 0)
				fail(err, "process.user: clear supplementary groups");
			w += (size_t)snprintf(list, sizeof(list), "[");
			for (uint32_t i = 0; i < p->ngroups && w < sizeof(list) - 16; i++)
				w += (size_t)snprintf(list + w, sizeof(list) - w, "%s%u", i ? " " : "", p->groups[i]);
			snprintf(list + w, sizeof(list) - w, "]");
			fail(err, "process.user: process.user.additionalGids: setgroups %s", list);
		}
	}
	if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
		fail(errno, "process.user: process.user.gid: setresgid %u", p->gid);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail(errno, "process.user: set PR_SET_KEEPCAPS");
	if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
		fail(errno, "process.user: process.user.uid: setresuid %u", p->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fail(errno, "process.user: clear PR_SET_KEEPCAPS");
	if (p->flags & EXEC_UMASK)
		umask((mode_t)p->umask);
}

/*
 * enter_cwd is finishProcess's first chdir, before the user switch (as
 * root, who may enter a directory that the user may not): it returns 1 when
 * root was refused (EACCES, EPERM) and check_cwd must try again as the user,
 * 0 when done; any other error fails.
 */
static int enter_cwd(struct exec_plan *p)
{
	if (chdir(p->cwd) == 0)
		return 0;
	if (errno == EACCES || errno == EPERM)
		return 1;
	fail(errno, "process.cwd %s", p->cwd_quoted);
}

/*
 * check_cwd is the chdir again as the user when enter_cwd asked for it,
 * then the CVE-2024-21626 check of finishProcess
 */
static void check_cwd(struct exec_plan *p, int retry)
{
	char wd[4096 + 1];
	if (retry && chdir(p->cwd) < 0)
		fail(errno, "process.cwd %s", p->cwd_quoted);
	/*
	 * A cwd reached through a leaked fd lies outside the root: the kernel
	 * reports it as "(unreachable)...". The raw syscall, not getcwd(3),
	 * which turns that into ENOENT.
	 */
	long n = syscall(SYS_getcwd, wd, sizeof(wd) - 1);
	/*
	 * Fail closed when the kernel cannot say (a path too long for the
	 * buffer, an unlinked directory); only a getcwd that a seccomp
	 * profile refuses (EPERM, EACCES, ENOSYS) leaves the check to the
	 * closing of leaked fds.
	 */
	if (n < 0 && (errno == ENOENT || errno == ERANGE || errno == ENAMETOOLONG))
		fail(errno, "process.cwd %s: cannot tell whether it lies inside the container: getcwd", p->cwd_quoted);
	if (n > 0 && wd[0] != '/') {
		char q[sizeof(wd) * 4 + 4];
		wd[sizeof(wd) - 1] = '\0';
		quote(wd, q, sizeof(q));
		fail(0, "process.cwd %s: resolves outside the container (%s): invalid argument", p->cwd_quoted, q);
	}
}

/* clean_path writes Go's filepath.Clean(path) to out (room for strlen+2) */
static void clean_path(const char *path, char *out)
{
	size_t n = strlen(path), r = 0, w = 0, dotdot = 0;
	int rooted = n > 0 && path[0] == '/';
	if (n == 0) {
		strcpy(out, ".");
		return;
	}
	if (rooted) {
		out[w++] = '/';
		r = dotdot = 1;
	}
	while (r < n) {
		if (path[r] == '/') {
			r++;
		} else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
			r++;
		} else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == n || path[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			for (; r < n && path[r] != '/'; r++)
				out[w++] = path[r];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = '\0';
}

enum { CHECK_OK, CHECK_STAT, CHECK_DIR, CHECK_ACCESS };

/* check_exec is lookPath's check: stat, not a directory, executable */
static int check_exec(const char *path, int *err)
{
	struct stat st;
	if (fstatat(AT_FDCWD, path, &st, 0) < 0) {
		*err = errno;
		return CHECK_STAT;
	}
	if (S_ISDIR(st.st_mode))
		return CHECK_DIR;
	if (syscall(SYS_faccessat2, AT_FDCWD, path, X_OK, AT_EACCESS) < 0) {
		int e = errno;
		/* no faccessat2 (or a filter refusing it): the real and effective ids are equal here */
		if (e == ENOSYS || e == EPERM) {
			if (faccessat(AT_FDCWD, path, X_OK, 0) == 0)
				return CHECK_OK;
			e = errno;
		}
		*err = e;
		return CHECK_ACCESS;
	}
	return CHECK_OK;
}

/* look_path is lookPath: args[0] in the container, with the PATH of env */
static char *look_path(struct exec_plan *p)
{
	const char *name = p->argv[0], *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	int err = 0;
	if (strchr(name, '/') != NULL) {
		switch (check_exec(name, &err)) {
		case CHECK_OK:
			return (char *)name;
		case CHECK_STAT:
			fail(err, "process.args[0]: exec %s: stat %s", p->arg0_quoted, name);
		case CHECK_DIR:
			fail(0, "process.args[0]: exec %s: is a directory", p->arg0_quoted);
		default:
			fail(err, "process.args[0]: exec %s", p->arg0_quoted);
		}
	}
	for (char **e = p->envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	if (*path != '\0') {
		size_t nl = strlen(name);
		for (const char *dir = path;;) {
			const char *colon = strchrnul(dir, ':');
			size_t dl = (size_t)(colon - dir);
			char *joined = malloc(dl + nl + 4), *clean = malloc(dl + nl + 4);
			if (joined == NULL || clean == NULL)
				fail(ENOMEM, "process.args[0]");
			if (dl == 0)
				snprintf(joined, dl + nl + 4, "./%s", name);
			else
				snprintf(joined, dl + nl + 4, "%.*s/%s", (int)dl, dir, name);
			clean_path(joined, clean);
			free(joined);
			if (check_exec(clean, &err) == CHECK_OK)
				return clean;
			free(clean);
			if (*colon == '\0')
				break;
			dir = colon + 1;
		}
	}
	fail(0, "process.args[0]: exec %s: executable file not found in $PATH", p->arg0_quoted);
}

static int capget_(struct cap_data d[2])
{
	struct cap_header h = { CAP_VERSION_3, 0 };
	return (int)syscall(SYS_capget, &h, d);
}

static int capset_(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct cap_header h = { CAP_VERSION_3, 0 };
	struct cap_data d[2];
	for (int i = 0; i < 2; i++) {
		d[i].effective = (uint32_t)(eff >> (32 * i));
		d[i].permitted = (uint32_t)(prm >> (32 * i));
		d[i].inheritable = (uint32_t)(inh >> (32 * i));
	}
	return (int)syscall(SYS_capset, &h, d);
}

/* apply_caps is capability.Apply with the sets already built */
static void apply_caps(struct exec_plan *p)
{
	struct cap_data cur[2];
	char nb[32];
	int last = (int)p->cap_last;
	if (capget_(cur) < 0)
		fail(errno, "process.capabilities: capget");
	uint64_t prm = cur[0].permitted | (uint64_t)cur[1].permitted << 32;
	uint64_t inh = cur[0].inheritable | (uint64_t)cur[1].inheritable << 32;
	/* the effective set may be empty after the uid change: raise it so that CAP_SETPCAP is in force */
	if (capset_(prm, prm, inh) < 0)
		fail(errno, "process.capabilities: capset");
	for (int n = 0; n <= last; n++) {
		if (p->cap_bnd & (1ULL << n))
			continue;
		if (prctl(PR_CAPBSET_DROP, n, 0, 0, 0) < 0) {
			if (errno == EINVAL && n > MAX_KNOWN_CAP)
				break;
			fail(errno, "process.capabilities: drop %s from the bounding set", cap_name(n, nb, sizeof(nb)));
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		fail(errno, "process.capabilities: clear the ambient capability set");
	if (capset_(p->cap_eff, p->cap_prm, p->cap_inh) < 0) {
		int err = errno;
		char e[1024], pm[1024], i[1024];
		cap_list(p->cap_eff, e, sizeof(e));
		cap_list(p->cap_prm, pm, sizeof(pm));
		cap_list(p->cap_inh, i, sizeof(i));
		fail(err, "process.capabilities: set capabilities (effective %s, permitted %s, inheritable %s): capset", e, pm, i);
	}
	for (int n = 0; n <= last; n++) {
		if (!(p->cap_amb & (1ULL << n)) || !(p->cap_prm & p->cap_inh & (1ULL << n)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, n, 0, 0) < 0)
			fail(errno, "process.capabilities: raise ambient capability %s", cap_name(n, nb, sizeof(nb)));
	}
}

void gantry_exec_run(struct exec_plan *p)
{
	char *path;
	int cwd_retry;
	/* every fd past the preserved ones closes on exec, the socket too */
	if (syscall(SYS_close_range, 3 + p->preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		if (errno != EINVAL && errno != ENOSYS)
			fail(errno, "mark fds close-on-exec");
		/*
		 * Linux before 5.11 has no CLOSE_RANGE_CLOEXEC. The bootstrap
		 * closed every fd it was not told to keep, and kept ones are
		 * below MAX_KEEP (the socket included): mark those one by one.
		 */
		for (int fd = 3 + p->preserve_fds; fd < 1024; fd++) {
			int fl = fcntl(fd, F_GETFD);
			if (fl >= 0 && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
				fail(errno, "mark fd %d close-on-exec", fd);
		}
	}
	if (p->flags & EXEC_OOM)
		set_oom_score_adj(p->oom_score_adj);
	if (p->flags & EXEC_HOME)
		add_home(p);
	if ((p->flags & EXEC_SECCOMP) && !(p->flags & EXEC_NNP))
		install_seccomp(p);
	set_rlimits(p);
	cwd_retry = enter_cwd(p);
	switch_user(p);
	check_cwd(p, cwd_retry);
	path = look_path(p);
	apply_caps(p);
	if ((p->flags & EXEC_NNP) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(errno, "process.noNewPrivileges");
	if ((p->flags & EXEC_SECCOMP) && (p->flags & EXEC_NNP))
		install_seccomp(p);
	gantry_trace("exec: exec (fast path)");
	execve(path, p->argv, p->envp);
	{
		char msg[4096];
		int n = snprintf(msg, sizeof(msg), "gantry-oci: exec %s: %s\n", path, errstr(errno));
		if (n > (int)sizeof(msg) - 1)
			n = (int)sizeof(msg) - 1;
		if (write(2, msg, (size_t)n) < 0) {
			/* nothing left to report it to */
		}
	}
	_exit(127);
}
