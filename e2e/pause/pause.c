/*
 * palisade-pause: the sandbox ("pause") container of the real test nodes'
 * pods, built here because no registry is reachable (scripts/build-images.sh
 * makes it the image registry.k8s.io/pause:3.10.2, containerd 2.4's default
 * sandbox image name).
 *
 * It holds the pod's namespaces open by sleeping in pause() until SIGTERM or
 * SIGINT, which end it with exit status 0. As PID 1 of a pod that shares its
 * PID namespace it also reaps the orphans that are reparented to it.
 * Statically linked: the image is FROM scratch.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) { (void)sig; stop = 1; }

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		puts("palisade-pause");
		return 0;
	}
	/* PID 1 gets no default signal actions: each must have a handler. */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0) {
		perror("palisade-pause: sigaction");
		return 1;
	}
	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	if (sigaction(SIGCHLD, &sa, NULL) < 0) {
		perror("palisade-pause: sigaction");
		return 1;
	}
	while (!stop)
		pause();
	return 0;
}
