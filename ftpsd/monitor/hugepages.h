/* Huge pages for the scratch memory of password hashing (see hugepages.c).
 * Bracket a crypt(3) or pam_authenticate() call; nesting is allowed. */
#pragma once

void hugepages_begin(void);
void hugepages_end(void);
