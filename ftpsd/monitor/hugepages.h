/* Huge pages for the scratch memory of password hashing (see hugepages.c).
 * Monitor only: bracket a crypt(3) or pam_authenticate() call; nesting is
 * allowed. Only the calling process's large anonymous mappings between the
 * two are affected. */
#pragma once

void hugepages_begin(void);
void hugepages_end(void);
