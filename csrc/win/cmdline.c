/* cmdline.c — see cmdline.h. */
#include "cmdline.h"

#include <stdlib.h>

#include "winpath.h"

size_t sbx_win_split_cmdline(const uint16_t *cmd, char ***argv_out)
{
    size_t wlen = 0;
    while (cmd[wlen])
        wlen++;
    size_t maxargs = wlen / 2 + 2;
    size_t strcap = wlen * 3 + maxargs + 1;
    char **argv = malloc(maxargs * sizeof *argv + strcap);
    uint16_t *arg = malloc((wlen + 1) * sizeof *arg);
    *argv_out = argv;
    if (!argv || !arg) {
        free(arg);
        return 0;
    }
    char *out = (char *)(argv + maxargs);
    size_t argc = 0;
    const uint16_t *p = cmd;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t n = 0;
        int quoted = 0;
        if (argc == 0) {
            /* The program name: quotes group, backslashes are literal. */
            for (; *p && (quoted || (*p != ' ' && *p != '\t')); p++) {
                if (*p == '"')
                    quoted = !quoted;
                else
                    arg[n++] = *p;
            }
        } else {
            while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
                size_t bs = 0;
                while (*p == '\\') {
                    bs++;
                    p++;
                }
                if (*p == '"') {
                    for (size_t i = 0; i < bs / 2; i++)
                        arg[n++] = '\\';
                    if (bs % 2) {
                        arg[n++] = '"';
                    } else if (quoted && p[1] == '"') {
                        arg[n++] = '"';     /* "" inside quotes: a literal quote */
                        p++;
                    } else {
                        quoted = !quoted;
                    }
                    p++;
                } else {
                    for (size_t i = 0; i < bs; i++)
                        arg[n++] = '\\';
                    if (*p && (quoted || (*p != ' ' && *p != '\t')))
                        arg[n++] = *p++;
                }
            }
        }
        long k = sbx_utf16_to_utf8(out, strcap, arg, n);
        if (k < 0 || argc + 1 >= maxargs)
            break;
        argv[argc++] = out;
        out += k + 1;
        strcap -= (size_t)k + 1;
    }
    free(arg);
    return argc;
}
