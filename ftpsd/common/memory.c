#include "memory.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The stack's mapping when the process began; it only grows down from
 * there, and only pages inside it are ever released. */
static uintptr_t stack_lo, stack_hi;

void memory_init(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/maps", "re");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		if (strstr(line, "[stack]") != NULL && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			stack_lo = lo;
			stack_hi = hi;
			break;
		}
	}
	fclose(f);
}

__attribute__((noinline)) void memory_release(void)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	/* Two pages of margin below this frame: madvise()'s own call and any
	 * signal handler run there, and fault fresh pages in if they need more. */
	uintptr_t top = ((uintptr_t)__builtin_frame_address(0) & ~(page - 1)) - 2 * page;

	(void)malloc_trim(0);
	if (stack_lo != 0 && top > stack_lo && top < stack_hi)
		(void)madvise((void *)stack_lo, top - stack_lo, MADV_DONTNEED);
}
