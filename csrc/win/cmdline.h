/* cmdline.h — a Windows command line back into argv.
 *
 * Windows passes a process one string; the exec records of a Result carry
 * argv.  The rules are the Microsoft C runtime's (what a C program's main()
 * would receive): whitespace separates, quotes group, 2n backslashes before
 * a quote give n and the quote toggles, 2n+1 give n and a literal quote,
 * "" inside quotes is a quote; the program name only honours quotes.
 *
 * Portable C99 on UTF-16 units, unit-tested natively.
 */
#ifndef SBX_WIN_CMDLINE_H
#define SBX_WIN_CMDLINE_H

#include <stddef.h>
#include <stdint.h>

/* Split the NUL-terminated cmd into UTF-8 arguments.  Returns argc; *argv
 * is one allocation (pointers and strings) to free(), NULL when memory ran
 * out. */
size_t sbx_win_split_cmdline(const uint16_t *cmd, char ***argv);

#endif
