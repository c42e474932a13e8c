/* The monitor's mmap interposer (monitor/hugepages.c) acts only where it
 * should: a large anonymous private mapping between hugepages_begin() and
 * hugepages_end(), in the process that called begin. Outside, in a process
 * forked meanwhile (as the child is, or a PAM helper), and for small
 * mappings, mmap is the kernel's as asked. "Acts" is read from
 * /proc/self/smaps: MADV_HUGEPAGE shows as the VmFlags "hg". */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hugepages.h"
#include "sanitizer.h"

#define BIG ((size_t)16 << 20)

/* Where hugepages.c builds its interposer (sanitizers intercept mmap). */
#if (defined(__x86_64__) || defined(__aarch64__)) && !FTPSD_SANITIZED
#define INTERPOSED 1
#else
#define INTERPOSED 0
#endif

#if INTERPOSED

/* Whether the mapping that holds p has MADV_HUGEPAGE (smaps "hg"). */
static bool advised(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false, hg = false;

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0)
			hg = strstr(line, " hg") != NULL;
	}
	fclose(f);
	return hg;
}

/* mmap by its symbol, as libcrypt calls it (the header may name it mmap64,
 * which the interposer does not stand in front of). */
void *mmap_symbol(void *addr, size_t len, int prot, int flags, int fd, off_t off) __asm__("mmap");

static void *map(size_t len)
{
	void *p =
		mmap_symbol(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

#endif

int main(void)
{
#if !INTERPOSED
	return 77; /* no interposer in this build */
#else
	if (sysconf(_SC_PAGESIZE) != 4096 ||
	    access("/sys/kernel/mm/transparent_hugepage", F_OK) < 0)
		return 77;

	void *before = map(BIG);
	CHECK(!advised(before));

	hugepages_begin();
	void *big = map(BIG), *small = map(1 << 20);
	CHECK(((uintptr_t)big & ((2 << 20) - 1)) == 0);
	CHECK(advised(big));
	CHECK(!advised(small));
	/* A process forked meanwhile is not the one that asked. */
	pid_t pid = fork();
	if (pid == 0) {
		void *p = mmap_symbol(NULL, BIG, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		_exit(p != MAP_FAILED && !advised(p) ? 0 : 1);
	}
	int status = -1;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	hugepages_end();

	void *after = map(BIG);
	CHECK(!advised(after));
	/* What the interposer returned is unmapped whole by the caller's munmap. */
	CHECK(munmap(big, BIG) == 0);
	munmap(before, BIG);
	munmap(small, 1 << 20);
	munmap(after, BIG);
	return CHECK_DONE();
#endif
}
