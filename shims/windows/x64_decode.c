/* x64_decode.c — see x64_decode.h. */
#include "x64_decode.h"

#include <string.h>

/* ModRM (+SIB, +displacement) length; flags RIP-relative operands. */
static unsigned modrm_len(const uint8_t *p, int *riprel)
{
    uint8_t m = p[0];
    unsigned mod = m >> 6, rm = m & 7, n = 1;
    *riprel = 0;
    if (mod == 3)
        return n;
    if (rm == 4) {                      /* SIB follows */
        uint8_t sib = p[1];
        n++;
        if (mod == 0 && (sib & 7) == 5)
            n += 4;                     /* no base: disp32 */
    } else if (mod == 0 && rm == 5) {
        *riprel = 1;
        return n + 4;
    }
    if (mod == 1)
        n += 1;
    else if (mod == 2)
        n += 4;
    return n;
}

static int32_t rd32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

unsigned sbx_x64_decode(const uint8_t *p, struct sbx_insn *out)
{
    const uint8_t *start = p;
    int opsize16 = 0, rexw = 0;
    memset(out, 0, sizeof *out);
    out->kind = SBX_INSN_PLAIN;

    for (;; p++) {                      /* legacy prefixes */
        uint8_t b = *p;
        if (b == 0x66)
            opsize16 = 1;
        else if (b == 0x67 || b == 0xF0 || b == 0xF2 || b == 0xF3 || b == 0x2E ||
                 b == 0x36 || b == 0x3E || b == 0x26 || b == 0x64 || b == 0x65)
            ;
        else
            break;
        if (p - start > 4)
            return 0;
    }
    if ((*p & 0xF0) == 0x40) {          /* REX */
        rexw = (*p & 0x08) != 0;
        p++;
    }
    uint8_t op = *p++;
    unsigned imm = 0;                   /* immediate bytes after ModRM */
    int has_modrm = 0;
    unsigned imm_z = opsize16 ? 2 : 4;  /* "Iz": 16 or 32 bits */

    if (op == 0x0F) {
        uint8_t op2 = *p++;
        if (op2 >= 0x80 && op2 <= 0x8F) {           /* jcc rel32 */
            out->kind = SBX_INSN_JCC;
            out->cond = op2 & 0x0F;
            out->rel = rd32(p);
            p += 4;
            goto done;
        }
        if (op2 == 0x05 || op2 == 0x0B || op2 == 0xA2 || op2 == 0x31 ||
            (op2 >= 0xC8 && op2 <= 0xCF))
            goto done;                              /* syscall, ud2, cpuid, rdtsc, bswap */
        if (op2 == 0x38) {
            p++;
            has_modrm = 1;
        } else if (op2 == 0x3A) {
            p++;
            has_modrm = 1;
            imm = 1;
        } else {
            has_modrm = 1;
            if (op2 == 0xBA || op2 == 0xA4 || op2 == 0xAC || (op2 >= 0x70 && op2 <= 0x73) ||
                op2 == 0xC2 || op2 == 0xC4 || op2 == 0xC5 || op2 == 0xC6)
                imm = 1;
        }
    } else if (op < 0x40) {
        switch (op & 7) {
        case 0: case 1: case 2: case 3: has_modrm = 1; break;
        case 4: imm = 1; break;
        case 5: imm = imm_z; break;
        default: return 0;              /* segment push/pop, BCD: invalid in 64-bit */
        }
    } else if (op >= 0x50 && op <= 0x5F) {
        ;                               /* push/pop r64 */
    } else if (op == 0x63) {
        has_modrm = 1;
    } else if (op == 0x68) {
        imm = 4;
    } else if (op == 0x69) {
        has_modrm = 1;
        imm = imm_z;
    } else if (op == 0x6A) {
        imm = 1;
    } else if (op == 0x6B) {
        has_modrm = 1;
        imm = 1;
    } else if (op >= 0x70 && op <= 0x7F) {
        out->kind = SBX_INSN_JCC;
        out->cond = op & 0x0F;
        out->rel = (int8_t)*p++;
        goto done;
    } else if (op == 0x80 || op == 0x83 || op == 0xC0 || op == 0xC1 || op == 0xC6) {
        has_modrm = 1;
        imm = 1;
    } else if (op == 0x81 || op == 0xC7) {
        has_modrm = 1;
        imm = imm_z;
    } else if ((op >= 0x84 && op <= 0x8F) || (op >= 0xD0 && op <= 0xD3) ||
               op == 0xFE || op == 0xFF) {
        if (op == 0xFF && (p[0] & 0x38) == 0x20 && ((p[0] >> 6) != 3))
            return 0;                   /* jmp [mem]: a thunk, not a prologue */
        has_modrm = 1;
    } else if ((op >= 0x90 && op <= 0x99) || op == 0x9C || op == 0x9D) {
        ;
    } else if (op == 0xA8) {
        imm = 1;
    } else if (op == 0xA9) {
        imm = imm_z;
    } else if (op >= 0xB0 && op <= 0xB7) {
        imm = 1;
    } else if (op >= 0xB8 && op <= 0xBF) {
        imm = rexw ? 8 : imm_z;
    } else if (op == 0xC3 || op == 0xCC) {
        out->kind = SBX_INSN_RET;
    } else if (op == 0xC2) {
        out->kind = SBX_INSN_RET;
        imm = 2;
    } else if (op == 0xCD) {
        imm = 1;
    } else if (op == 0xE8 || op == 0xE9) {
        out->kind = op == 0xE8 ? SBX_INSN_CALL : SBX_INSN_JMP;
        out->rel = rd32(p);
        p += 4;
        goto done;
    } else if (op == 0xEB) {
        out->kind = SBX_INSN_JMP;
        out->rel = (int8_t)*p++;
        goto done;
    } else if (op == 0xF6 || op == 0xF7) {
        has_modrm = 1;
        if ((p[0] & 0x38) <= 0x08)      /* test r/m, imm */
            imm = op == 0xF6 ? 1 : imm_z;
    } else {
        return 0;
    }

    if (has_modrm) {
        int riprel;
        unsigned n = modrm_len(p, &riprel);
        if (riprel) {
            out->kind = SBX_INSN_RIPREL;
            out->disp_off = (unsigned)(p + 1 - start);
        }
        p += n;
    }
    p += imm;
done:
    out->len = (unsigned)(p - start);
    return out->len > 15 ? 0 : out->len;
}

void sbx_x64_abs_jmp(uint8_t *dst, uint64_t target)
{
    static const uint8_t jmp_rip[6] = {0xFF, 0x25, 0, 0, 0, 0};
    memcpy(dst, jmp_rip, 6);
    memcpy(dst + 6, &target, 8);
}

static int fits32(int64_t v)
{
    return v >= INT32_MIN && v <= INT32_MAX;
}

size_t sbx_x64_relocate(const uint8_t *src, uint64_t src_addr, size_t min_bytes,
                        uint8_t *dst, uint64_t dst_addr, size_t cap, size_t *taken)
{
    size_t in = 0, out = 0;
    while (in < min_bytes) {
        struct sbx_insn insn;
        unsigned len = sbx_x64_decode(src + in, &insn);
        if (!len || insn.kind == SBX_INSN_RET)
            return 0;
        uint64_t end = src_addr + in + len;          /* where rel is measured from */
        uint64_t target = end + (uint64_t)insn.rel;
        uint64_t here = dst_addr + out;
        /* Worst case below: jcc inverted around an absolute jump (2 + 14). */
        if (out + len + 16 > cap)
            return 0;
        switch (insn.kind) {
        case SBX_INSN_PLAIN:
            memcpy(dst + out, src + in, len);
            out += len;
            break;
        case SBX_INSN_RIPREL: {
            int64_t disp = (int64_t)(end + (uint64_t)(int64_t)rd32(src + in + insn.disp_off)) -
                           (int64_t)(here + len);
            if (!fits32(disp))
                return 0;
            int32_t d = (int32_t)disp;
            memcpy(dst + out, src + in, len);
            memcpy(dst + out + insn.disp_off, &d, 4);
            out += len;
            break;
        }
        case SBX_INSN_JMP:
        case SBX_INSN_CALL: {
            int64_t rel = (int64_t)(target - (here + 5));
            if (fits32(rel)) {
                int32_t r = (int32_t)rel;
                dst[out] = insn.kind == SBX_INSN_JMP ? 0xE9 : 0xE8;
                memcpy(dst + out + 1, &r, 4);
                out += 5;
            } else if (insn.kind == SBX_INSN_JMP) {
                sbx_x64_abs_jmp(dst + out, target);
                out += SBX_ABS_JMP_LEN;
            } else {
                /* call [rip+2]; jmp over the address; .quad target */
                static const uint8_t c[8] = {0xFF, 0x15, 2, 0, 0, 0, 0xEB, 8};
                memcpy(dst + out, c, 8);
                memcpy(dst + out + 8, &target, 8);
                out += 16;
            }
            if (insn.kind == SBX_INSN_JMP) {
                in += len;
                if (in < min_bytes)
                    return 0;   /* function continues elsewhere: too short to patch */
                *taken = in;
                return out;     /* no jump back needed after an unconditional jmp */
            }
            break;
        }
        case SBX_INSN_JCC: {
            int64_t rel = (int64_t)(target - (here + 6));
            if (fits32(rel)) {
                int32_t r = (int32_t)rel;
                dst[out] = 0x0F;
                dst[out + 1] = (uint8_t)(0x80 | insn.cond);
                memcpy(dst + out + 2, &r, 4);
                out += 6;
            } else {
                /* j!cc over an absolute jump */
                dst[out] = (uint8_t)(0x70 | (insn.cond ^ 1));
                dst[out + 1] = SBX_ABS_JMP_LEN;
                sbx_x64_abs_jmp(dst + out + 2, target);
                out += 2 + SBX_ABS_JMP_LEN;
            }
            break;
        }
        case SBX_INSN_RET:
            return 0;
        }
        in += len;
    }
    if (out + SBX_ABS_JMP_LEN > cap)
        return 0;
    sbx_x64_abs_jmp(dst + out, src_addr + in);
    out += SBX_ABS_JMP_LEN;
    *taken = in;
    return out;
}
