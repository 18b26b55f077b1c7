/* x64_decode.h — instruction lengths and relocation for inline hooks.
 *
 * The hook engine overwrites the first 5 bytes of a function with a jump;
 * the instructions it displaces ("stolen") are copied into a trampoline so
 * the original function can still be called.  Copying needs each
 * instruction's length, and instructions that address relative to their own
 * location (jmp/jcc/call rel, RIP-relative operands) must be re-aimed from
 * the trampoline.  This decoder knows the x86-64 instruction forms that
 * appear in function prologues (system DLL prologues, syscall stubs, hot-patch
 * pads) and refuses anything else, so a hook is skipped rather than wrong.
 *
 * Portable C99 with no Windows dependency: unit-tested natively on Linux.
 */
#ifndef SBX_X64_DECODE_H
#define SBX_X64_DECODE_H

#include <stddef.h>
#include <stdint.h>

enum sbx_insn_kind {
    SBX_INSN_PLAIN,      /* position independent: copied as is */
    SBX_INSN_RIPREL,     /* has a RIP-relative disp32 at disp_off */
    SBX_INSN_JMP,        /* jmp rel8/rel32 */
    SBX_INSN_JCC,        /* jcc rel8/rel32; cond = low 4 bits of the opcode */
    SBX_INSN_CALL,       /* call rel32 */
    SBX_INSN_RET,        /* ret, ret imm16, int3: control does not fall through */
};

struct sbx_insn {
    unsigned len;
    enum sbx_insn_kind kind;
    unsigned disp_off;   /* RIPREL: offset of the disp32 within the insn */
    int64_t rel;         /* JMP/JCC/CALL: target minus end of the insn */
    unsigned cond;       /* JCC: condition code 0..15 */
};

/* Decode one instruction at p (at least 15 readable bytes).  Returns its
 * length, or 0 when the form is unknown. */
unsigned sbx_x64_decode(const uint8_t *p, struct sbx_insn *out);

/* Copy whole instructions from src (which runs at src_addr) until at least
 * min_bytes are taken, re-aimed to run at dst_addr, then append a jump back
 * to src_addr + taken.  Returns the number of bytes written to dst (cap
 * bytes available) and sets *taken, or returns 0 when an instruction is
 * unknown, the function ends inside the stolen bytes, or dst is too small. */
size_t sbx_x64_relocate(const uint8_t *src, uint64_t src_addr, size_t min_bytes,
                        uint8_t *dst, uint64_t dst_addr, size_t cap, size_t *taken);

/* Write an absolute jump (jmp [rip+0]; .quad target) into 14 bytes at dst. */
#define SBX_ABS_JMP_LEN 14
void sbx_x64_abs_jmp(uint8_t *dst, uint64_t target);

#endif
