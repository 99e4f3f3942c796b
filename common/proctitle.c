/*
 * common/proctitle.c: rewrites the argv area so /proc/<pid>/cmdline shows the role (see
 * proctitle.h). The classic technique of nginx and PostgreSQL: argv and environ strings are
 * contiguous; environ is moved to the heap and the whole span becomes the title buffer.
 */
#include "common/proctitle.h"

#include "common/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static char *title_base;
static size_t title_cap;

void proctitle_init(int argc, char **argv)
{
    if (argc < 1 || argv[0] == NULL)
        return;
    char *base = argv[0];
    char *end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc; i++)
        if (argv[i] == end)
            end = argv[i] + strlen(argv[i]) + 1;
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **copy = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        if (environ[i] == end)
            end = environ[i] + strlen(environ[i]) + 1;
        copy[i] = xstrdup(environ[i]);
    }
    environ = copy;
    /* Callers keep using argv[i]: point them at heap copies before the area is overwritten. */
    for (int i = 0; i < argc; i++)
        argv[i] = xstrdup(argv[i]);
    title_base = base;
    title_cap = (size_t)(end - base);
}

void proctitle_set(const char *fmt, ...)
{
    char title[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(title, sizeof(title), fmt, ap);
    va_end(ap);
    prctl(PR_SET_NAME, (unsigned long)title, 0, 0, 0); /* kernel keeps 15 bytes */
    if (title_base == NULL || title_cap < 2)
        return;
    size_t len = strlen(title);
    if (len > title_cap - 1)
        len = title_cap - 1;
    memcpy(title_base, title, len);
    memset(title_base + len, 0, title_cap - len);
}
