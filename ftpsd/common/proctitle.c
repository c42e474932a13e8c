#include "proctitle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static char *title_start;
static size_t title_size;

void proctitle_init(int argc, char **argv)
{
	char *start, *end;
	size_t n = 0;

	if (argc <= 0 || argv[0] == NULL)
		return;
	start = argv[0];
	end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	for (; environ != NULL && environ[n] != NULL; n++)
		if (environ[n] == end)
			end = environ[n] + strlen(environ[n]) + 1;

	/* The area we overwrite holds argv and the environment: copy both first. */
	char **env = calloc(n + 1, sizeof(char *));
	if (env == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((env[i] = strdup(environ[i])) == NULL)
			abort();
	environ = env;
	for (int i = 0; i < argc; i++)
		if ((argv[i] = strdup(argv[i])) == NULL)
			abort();
	title_start = start;
	title_size = (size_t)(end - start);
}

void proctitle_set(const char *fmt, ...)
{
	va_list ap;

	if (title_start == NULL || title_size < 2)
		return;
	va_start(ap, fmt);
	memset(title_start, 0, title_size);
	vsnprintf(title_start, title_size - 1, fmt, ap);
	va_end(ap);
	/* comm stays "ftpsd" for both processes, whatever the title says. */
	prctl(PR_SET_NAME, "ftpsd", 0, 0, 0);
}
