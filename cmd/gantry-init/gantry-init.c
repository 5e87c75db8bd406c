// gantry-init is the init of a container run with `gantry run --init`:
// gantryd bind-mounts it read-only at /sbin/gantry-init and makes it the
// container's process, `/sbin/gantry-init -- COMMAND [ARG...]`. As PID 1 it
// runs COMMAND as its only direct child, forwards signals to it, reaps every
// zombie (orphans are re-parented to PID 1) and, when COMMAND exits, exits
// with its status: the exit code, or 128+n when signal n killed it.
//
// Signals: all are blocked in the init and read from a signalfd (a blocked
// signal is never dropped, even by a PID-namespace init without handlers).
// Every one but SIGCHLD is forwarded with kill(2) to the child alone, not
// to its process group, as docker-init does by default. The child runs in
// its own process group, made the terminal's foreground group when stdin is
// a terminal, so that a Ctrl-C on a tty reaches it once, from the kernel.
// The child unblocks every signal and resets every disposition to the
// default before execvp(3).
//
// Exit codes of the init itself, docker's: 127 when COMMAND is not found,
// 126 when it cannot be executed (one line on stderr names it), 125 when
// the init fails (usage, signalfd, fork).
//
// It is C, statically linked, so that it costs a container a few hundred
// kilobytes and no Go runtime: build with `gcc -static -O2`.
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
	exit_init_failed = 125,
	exit_cannot_run = 126,
	exit_not_found = 127,
};

static void fail(const char *what)
{
	fprintf(stderr, "gantry-init: %s: %s\n", what, strerror(errno));
	_exit(exit_init_failed);
}

// run_child becomes COMMAND; it returns only through _exit.
static void run_child(char **argv)
{
	sigset_t none;
	struct sigaction dfl;
	char why[128];

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL); // fails harmlessly for SIGKILL, SIGSTOP and glibc's own
	// Own process group, in the foreground of the terminal if stdin is
	// one; SIGTTOU is still blocked, so tcsetpgrp from the background works.
	setpgid(0, 0);
	if (isatty(STDIN_FILENO))
		tcsetpgrp(STDIN_FILENO, getpid());
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	execvp(argv[0], argv);
	int err = errno;
	if (err == ENOENT && strchr(argv[0], '/') == NULL)
		snprintf(why, sizeof(why), "executable file not found in $PATH");
	else
		snprintf(why, sizeof(why), "%s", strerror(err));
	why[0] = (char)tolower((unsigned char)why[0]);
	fprintf(stderr, "gantry-init: exec \"%s\": %s\n", argv[0], why);
	_exit(err == ENOENT || err == ENOTDIR ? exit_not_found : exit_cannot_run);
}

int main(int argc, char **argv)
{
	int first = argc > 1 && strcmp(argv[1], "--") == 0 ? 2 : 1;
	if (first >= argc) {
		fputs("usage: gantry-init -- COMMAND [ARG...]\n", stderr);
		return exit_init_failed;
	}

	// Block everything before the fork: a SIGCHLD or SIGTERM that comes
	// early waits in the signalfd instead of being lost.
	sigset_t all;
	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, NULL) < 0)
		fail("block signals");
	int sfd = signalfd(-1, &all, SFD_CLOEXEC);
	if (sfd < 0)
		fail("signalfd");
	pid_t child = fork();
	if (child < 0)
		fail("fork");
	if (child == 0)
		run_child(argv + first);

	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(si))
			fail("read signalfd");
		if (si.ssi_signo != SIGCHLD) {
			// ESRCH: the child is already gone (a zombie to reap next).
			kill(child, (int)si.ssi_signo);
			continue;
		}
		// One SIGCHLD may stand for several exits: reap until none is left.
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != child)
				continue;
			if (WIFSIGNALED(status))
				return 128 + WTERMSIG(status);
			return WEXITSTATUS(status);
		}
		if (pid < 0 && errno != ECHILD)
			fail("waitpid");
	}
}
