/* Test builds only (-Dtest-hooks=true): SITE TESTHOOK. */
#pragma once

#include <stdbool.h>

#include "build_config.h"

#if FTPSD_TEST_HOOKS
struct session;

/* Make a process of this session try what its sandbox must stop, and
 * answer what happened. */
void testhooks_site(struct session *s, const char *what);
/* SITE TESTHOOK IGNORE-QUOTA was given: uploads write past their allowance,
 * as a child taken over would. */
bool testhooks_ignore_quota(void);
#endif
