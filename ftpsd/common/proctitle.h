/* Process titles for ps: "ftpsd: monitor alice@192.0.2.1". */
#pragma once

/* Take over the argv/environ area; call once from main before anything reads environ. */
void proctitle_init(int argc, char **argv);
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
