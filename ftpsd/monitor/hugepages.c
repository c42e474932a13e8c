/* Huge pages for the password hash's scratch memory: the monitor's, while
 * it hashes, and nobody else's.
 *
 * yescrypt, libxcrypt's default method, maps 16 MiB with mmap(2) for every
 * hash and walks it at random: with 4 KiB pages that is 4,100 page faults
 * and a TLB miss on most accesses, about a third of a login's CPU. Where
 * transparent huge pages are "madvise" (Debian's default) nobody gets huge
 * pages without asking, and libxcrypt has no hook for its allocator.
 *
 * So ftpsd's own mmap() stands in front of libc's (ELF interposition:
 * libcrypt's calls through its PLT reach the executable's definition first)
 * and, while the monitor computes a hash, asks for huge pages for a large,
 * anonymous, private mapping: aligned to 2 MiB, then MADV_HUGEPAGE. The
 * memory is the same memory; only the page size changes, and the region is
 * still unmapped by libxcrypt when the hash is done.
 *
 * The interposition covers the whole executable, so what may act is kept
 * narrow:
 * - only between hugepages_begin() and hugepages_end(), which only monitor
 *   code calls (monitor_auth.c, around crypt(3) and pam_authenticate());
 *   child code cannot even name them (tests/boundary.sh);
 * - only in the process that called hugepages_begin(): a process forked
 *   meanwhile (a PAM module's helper) passes through, and so does the child,
 *   which is forked before any hash;
 * - every other call, in the monitor too, goes to the kernel as it came,
 *   through the raw syscall.
 *
 * Only on x86_64 and arm64 (where SYS_mmap takes mmap's own six arguments
 * and off_t is 64 bits), only with 4 KiB base pages, and not in sanitizer
 * builds, whose runtime intercepts mmap itself. */
#include "hugepages.h"

#include "sanitizer.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HUGE_SIZE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)4 << 20) /* yescrypt's region is 16 MiB; glibc's malloc arenas never come here */

static int huge_depth;
static pid_t huge_pid; /* the process that asked */

void hugepages_begin(void)
{
	if (huge_depth++ == 0)
		huge_pid = getpid();
}

void hugepages_end(void)
{
	if (huge_depth > 0)
		huge_depth--;
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer) || \
	__has_feature(hwaddress_sanitizer)
#define HUGE_OTHER_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_HWADDRESS__)
#define HUGE_OTHER_SANITIZER 1
#endif

#if (defined(__x86_64__) || defined(__aarch64__)) && !FTPSD_SANITIZED && !defined(HUGE_OTHER_SANITIZER)
static void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

/* The symbol is "mmap" whatever _FILE_OFFSET_BITS makes the header call it. */
void *hugepages_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) __asm__("mmap");

void *hugepages_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	const int anon = MAP_PRIVATE | MAP_ANONYMOUS;

	if (huge_depth == 0 || getpid() != huge_pid || addr != NULL ||
	    (flags & ~MAP_NORESERVE) != anon || len < HUGE_MIN || len > SIZE_MAX / 2 ||
	    sysconf(_SC_PAGESIZE) != 4096)
		return sys_mmap(addr, len, prot, flags, fd, off);

	int saved = errno;
	size_t plen = (len + 4095) & ~(size_t)4095;
	uint8_t *p = sys_mmap(NULL, plen + HUGE_SIZE, prot, flags, -1, 0);
	if (p == MAP_FAILED) {
		/* The 2 MiB of slack did not fit (overcommit, limits): as asked. */
		errno = saved;
		return sys_mmap(addr, len, prot, flags, fd, off);
	}
	uint8_t *a = (uint8_t *)(((uintptr_t)p + HUGE_SIZE - 1) & ~(uintptr_t)(HUGE_SIZE - 1));
	/* Trim the slack on both sides: the caller's munmap(a, len) then
	 * removes the whole mapping. */
	if (a > p)
		(void)munmap(p, (size_t)(a - p));
	if (p + plen + HUGE_SIZE > a + plen)
		(void)munmap(a + plen, (size_t)(p + plen + HUGE_SIZE - (a + plen)));
	/* Advice only: without THP the region is simply 4 KiB pages. */
	(void)madvise(a, plen, MADV_HUGEPAGE);
	errno = saved; /* a successful mmap leaves errno alone */
	return a;
}
#endif
