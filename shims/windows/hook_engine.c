/* hook_engine.c — see hook_engine.h. */
#include "hook_engine.h"

#include <stdint.h>
#include <string.h>
#include <windows.h>

#include "x64_decode.h"

#define SLOT_SIZE 128            /* trampoline (<= 96 bytes) + relay (14) */
#define TRAMP_CAP 96
#define BLOCK_SIZE 0x10000       /* allocation granularity */
#define NEAR_RANGE 0x70000000ull /* stay well inside +-2 GB */

struct block {
    uint8_t *base;
    size_t used;
};

static struct block blocks[16];
static int nblocks;

static int within_reach(uint64_t a, uint64_t b)
{
    return (a > b ? a - b : b - a) < NEAR_RANGE;
}

/* Find free address space near `target` by walking the regions around it. */
static uint8_t *alloc_block_near(uint64_t target)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    uint64_t lo = target > NEAR_RANGE ? target - NEAR_RANGE : (uint64_t)(uintptr_t)si.lpMinimumApplicationAddress;
    uint64_t hi = target + NEAR_RANGE;
    /* Try below the target first (stays clear of heaps growing upward), then above. */
    for (int dir = 0; dir < 2; dir++) {
        uint64_t a = (target & ~(uint64_t)(BLOCK_SIZE - 1));
        for (int i = 0; i < 4096; i++) {
            a = dir == 0 ? a - BLOCK_SIZE : a + BLOCK_SIZE;
            if (a < lo || a > hi)
                break;
            MEMORY_BASIC_INFORMATION mbi;
            if (!VirtualQuery((void *)(uintptr_t)a, &mbi, sizeof mbi))
                break;
            if (mbi.State != MEM_FREE) {
                /* skip the whole occupied region */
                uint64_t rb = (uint64_t)(uintptr_t)mbi.AllocationBase;
                uint64_t re = (uint64_t)(uintptr_t)mbi.BaseAddress + mbi.RegionSize;
                if (dir == 0 && rb)
                    a = (rb & ~(uint64_t)(BLOCK_SIZE - 1));
                else if (dir == 1)
                    a = ((re + BLOCK_SIZE - 1) & ~(uint64_t)(BLOCK_SIZE - 1)) - BLOCK_SIZE;
                continue;
            }
            void *p = VirtualAlloc((void *)(uintptr_t)a, BLOCK_SIZE, MEM_RESERVE | MEM_COMMIT,
                                   PAGE_EXECUTE_READWRITE);
            if (p)
                return p;
        }
    }
    return NULL;
}

static uint8_t *alloc_slot(uint64_t target)
{
    for (int i = 0; i < nblocks; i++)
        if (within_reach((uint64_t)(uintptr_t)blocks[i].base, target) &&
            blocks[i].used + SLOT_SIZE <= BLOCK_SIZE) {
            uint8_t *s = blocks[i].base + blocks[i].used;
            blocks[i].used += SLOT_SIZE;
            return s;
        }
    if (nblocks == (int)(sizeof blocks / sizeof blocks[0]))
        return NULL;
    uint8_t *b = alloc_block_near(target);
    if (!b)
        return NULL;
    blocks[nblocks].base = b;
    blocks[nblocks].used = SLOT_SIZE;
    nblocks++;
    return b;
}

void *sbx_hook_resolve(void *fn)
{
    static const uint8_t hotpatch[8] = {0x48, 0x8D, 0xA4, 0x24, 0, 0, 0, 0};
    for (int hops = 0; fn && hops < 4; hops++) {
        uint8_t *p = fn;
        if (memcmp(p, hotpatch, 8) == 0 && p[8] == 0xFF && p[9] == 0x25)
            p += 8;
        if (p[0] == 0xFF && p[1] == 0x25) {          /* jmp [rip+disp32] */
            int32_t d;
            memcpy(&d, p + 2, 4);
            fn = *(void **)(p + 6 + d);
            continue;
        }
        if (p[0] == 0xE9) {                          /* jmp rel32 thunk */
            int32_t d;
            memcpy(&d, p + 1, 4);
            fn = p + 5 + d;
            continue;
        }
        break;
    }
    return fn;
}

int sbx_hook_install(void *target, void *detour, void **original, const char **why)
{
    uint8_t *t = target;
    uint8_t *slot = alloc_slot((uint64_t)(uintptr_t)t);
    if (!slot) {
        *why = "no free memory within 2 GB of the function";
        return -1;
    }
    size_t taken = 0;
    size_t n = sbx_x64_relocate(t, (uint64_t)(uintptr_t)t, 5, slot,
                                (uint64_t)(uintptr_t)slot, TRAMP_CAP, &taken);
    if (!n) {
        *why = "its first instructions could not be decoded or relocated";
        return -1;               /* the slot is simply left unused */
    }
    uint8_t *relay = slot + TRAMP_CAP;
    sbx_x64_abs_jmp(relay, (uint64_t)(uintptr_t)detour);

    DWORD old;
    if (!VirtualProtect(t, taken, PAGE_EXECUTE_READWRITE, &old)) {
        *why = "VirtualProtect refused to make it writable";
        return -1;
    }
    *original = slot;            /* publish before the jump goes live */
    int32_t rel = (int32_t)((int64_t)(uintptr_t)relay - (int64_t)(uintptr_t)(t + 5));
    uint8_t patch[16];
    patch[0] = 0xE9;
    memcpy(patch + 1, &rel, 4);
    memset(patch + 5, 0x90, taken - 5);   /* never executed; nop keeps disassembly sane */
    memcpy(t, patch, taken);
    VirtualProtect(t, taken, old, &old);
    FlushInstructionCache(GetCurrentProcess(), t, taken);
    return 0;
}
