/* hook_engine.h — inline function hooks with trampolines (x86-64).
 *
 * The first instructions of the target are replaced by a 5-byte `jmp rel32`
 * to a relay next to the target (an absolute jump to the detour); the
 * displaced instructions, re-aimed by x64_decode.c, live in a trampoline
 * that ends with a jump back into the target.  Calling the trampoline is
 * calling the original function.  Relay and trampoline are allocated within
 * +-2 GB of the target so the 5-byte jump always reaches.
 *
 * Installation is meant for the moment the DLL loads into a suspended
 * process, when no other thread can be executing the patched bytes.
 */
#ifndef SBX_HOOK_ENGINE_H
#define SBX_HOOK_ENGINE_H

/* Follow import thunks (`jmp [rip+x]`, optionally after a hot-patch
 * `lea rsp,[rsp+0]`) to the function that does the work. */
void *sbx_hook_resolve(void *fn);

/* Hook `target`; on success *original is a callable trampoline.  Returns 0,
 * or -1 with a reason in why (the prologue could not be decoded, no memory
 * near the target, the page could not be made writable). */
int sbx_hook_install(void *target, void *detour, void **original, const char **why);

#endif
