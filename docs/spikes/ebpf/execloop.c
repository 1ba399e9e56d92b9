#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 5000;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		pid_t p = fork();
		if (p == 0) { execl("/bin/true", "true", (char *)0); _exit(127); }
		int st; waitpid(p, &st, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%ld fork+exec in %.3f s = %.0f/s\n", n, s, n / s);
	return 0;
}
