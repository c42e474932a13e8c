/* Memory a session gives back before it idles: both processes are exec'd
 * fresh per connection, so every page left dirty is paid by each session. */
#pragma once

/* Note where the stack is (/proc/self/maps): call first thing in main(),
 * before any chroot, Landlock or seccomp. Without it memory_release() only
 * trims the heap. */
void memory_init(void);
/* Give back the free heap (malloc_trim) and the stack pages below the
 * caller's frame, which hold nothing live: call from a shallow frame (an
 * event loop) once the process settles, e.g. after login. */
void memory_release(void);
