// The CUDA kernel environment on the host: lets g++ compile the pack's kernels/*.cu unchanged and run
// their launches on the CPU, so the GPU tests check real numbers on a machine without a GPU.
//
// Compiled in front of a kernel instantiation (g++ -include cuda_emu.h) into one shared library per
// (file, types); emulated_pycuda.py loads it with ctypes and calls c2emu_launch_<kernel>.
//
// Execution model: one block after another, its threads one after another on this OS thread.
// The first block runs every thread as a fiber (ucontext), switching at __syncthreads, which is then a
// real barrier; if it never reached a barrier the other blocks run their threads as plain calls (a
// barrier reached there is reported as divergent). Reverse mode (C2_EMU_REVERSE=1) runs blocks and
// threads last to first, so a result that depends on that order fails one of the two runs. Shared
// memory is a static, per block because blocks do not overlap, refilled with 0xFF before each block;
// atomics are exact because nothing runs concurrently. What this cannot show: races whose result
// does not depend on the order (a lost update: threads never interleave between a read and a write),
// warp-level behaviour, performance.
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <ucontext.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// shared memory: statics in their own section, filled with 0xFF bytes before every block, so a kernel
// reading shared memory its block did not write sees NaN / -1 (garbage on a GPU), not zeros or the
// previous block's values
#define __shared__ __attribute__((section("c2emu_shared"))) static
extern "C" char __start_c2emu_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_c2emu_shared[] __attribute__((weak, visibility("hidden")));

struct uint3 { unsigned x, y, z; };
struct dim3 { unsigned x, y, z; };

static uint3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

using std::isinf;
using std::isnan;
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }

template <typename T>
static inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
static inline int atomicCAS(int* p, int compare, int value) {
  int old = *p;
  if (old == compare) *p = value;
  return old;
}

namespace c2emu {

constexpr size_t kStackBytes = 64 * 1024;

struct Fiber {
  ucontext_t context;
  char* stack = nullptr;
  bool done = false;
};

static ucontext_t scheduler;
static std::vector<Fiber> fibers;
static Fiber* running = nullptr;
static const std::function<void()>* thread_body = nullptr;

// AddressSanitizer (C2_EMU_ASAN=1) must be told about every stack switch
#if defined(__SANITIZE_ADDRESS__)
static const void* scheduler_stack = nullptr;
static size_t scheduler_stack_size = 0;
#define C2EMU_START_SWITCH(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define C2EMU_FINISH_SWITCH(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#else
static const void* scheduler_stack = nullptr;
static size_t scheduler_stack_size = 0;
#define C2EMU_START_SWITCH(save, bottom, size) ((void)0)
#define C2EMU_FINISH_SWITCH(save, bottom, size) ((void)0)
#endif

static void fiber_main() {
  C2EMU_FINISH_SWITCH(nullptr, &scheduler_stack, &scheduler_stack_size);
  (*thread_body)();
  running->done = true;   // returning resumes the scheduler through uc_link
  C2EMU_START_SWITCH(nullptr, scheduler_stack, scheduler_stack_size);
}

// scheduler -> thread t's fiber, back when it reaches a barrier or ends
static void resume(Fiber& f) {
  void* fake_stack = nullptr;
  C2EMU_START_SWITCH(&fake_stack, f.stack, kStackBytes);
  swapcontext(&scheduler, &f.context);
  C2EMU_FINISH_SWITCH(fake_stack, nullptr, nullptr);
}

// a thread at a barrier -> the scheduler
static void yield_to_scheduler() {
  void* fake_stack = nullptr;
  C2EMU_START_SWITCH(&fake_stack, scheduler_stack, scheduler_stack_size);
  swapcontext(&running->context, &scheduler);
  C2EMU_FINISH_SWITCH(fake_stack, &scheduler_stack, &scheduler_stack_size);
}

struct Divergent : std::runtime_error {
  using std::runtime_error::runtime_error;
};

static std::string where() {
  char buf[160];
  snprintf(buf, sizeof buf, "thread (%u,%u,%u) of block (%u,%u,%u)", threadIdx.x, threadIdx.y, threadIdx.z,
           blockIdx.x, blockIdx.y, blockIdx.z);
  return buf;
}

static void poison_shared_memory() {
  if (__start_c2emu_shared != nullptr && __stop_c2emu_shared != nullptr)
    memset(__start_c2emu_shared, 0xFF, __stop_c2emu_shared - __start_c2emu_shared);
}

static void set_thread(unsigned t) {
  threadIdx.x = t % blockDim.x;
  threadIdx.y = t / blockDim.x % blockDim.y;
  threadIdx.z = t / (blockDim.x * blockDim.y);
}

// reverse: blocks and threads run last to first (C2_EMU_REVERSE=1 in emulated_pycuda): a kernel whose result depends on the order its
// threads run in (a race) then gives another result than in the first-to-last order
static bool reverse = false;

static unsigned in_order(unsigned k, unsigned n) { return reverse ? n - 1 - k : k; }

// every thread of the current block as a fiber; true when a barrier was reached
static bool run_block_as_fibers(const std::function<void()>& body) {
  const unsigned n = blockDim.x * blockDim.y * blockDim.z;
  if (fibers.size() < n) fibers.resize(n);
  thread_body = &body;
  for (unsigned t = 0; t < n; ++t) {
    Fiber& f = fibers[t];
    if (!f.stack) f.stack = static_cast<char*>(malloc(kStackBytes));
    if (!f.stack) throw std::runtime_error("out of memory for the emulated threads' stacks");
    f.done = false;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack;
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = &scheduler;
    makecontext(&f.context, fiber_main, 0);
  }
  bool any_barrier = false;
  for (unsigned live = n; live;) {
    unsigned waiting = 0, finished = 0;
    for (unsigned k = 0; k < n; ++k) {
      const unsigned t = in_order(k, n);
      Fiber& f = fibers[t];
      if (f.done) continue;
      set_thread(t);
      running = &f;
      resume(f);
      if (f.done) ++finished; else ++waiting;
    }
    running = nullptr;
    if (waiting && waiting != live) {
      throw Divergent("__syncthreads reached by " + std::to_string(waiting) + " of the " + std::to_string(live) +
                      " threads still running in block (" + std::to_string(blockIdx.x) + "," +
                      std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) + ") (a divergent barrier)");
    }
    any_barrier |= waiting > 0;
    live = waiting;
  }
  return any_barrier;
}

template <typename T>
constexpr char code() {
  if constexpr (std::is_pointer_v<T>) return 'P';
  else if constexpr (std::is_same_v<T, float>) return 'f';
  else if constexpr (std::is_same_v<T, double>) return 'd';
  else if constexpr (std::is_same_v<T, int>) return 'i';
  else if constexpr (std::is_same_v<T, long long>) return 'q';
  else return '?';
}

template <typename... A>
const char* signature(void (*)(A...)) {
  static const char sig[] = {code<std::decay_t<A>>()..., '\0'};
  return sig;
}

template <typename... A, size_t... I>
std::tuple<std::decay_t<A>...> unpack(void** args, std::index_sequence<I...>) {
  return std::tuple<std::decay_t<A>...>{*static_cast<std::decay_t<A>*>(args[I])...};
}

// dims: grid x, y, z, block x, y, z, then 1 to run last to first; args: a pointer to each parameter's value
template <typename... A>
int launch(void (*kernel)(A...), const unsigned* dims, void** args, char* error, int error_size) {
  auto values = unpack<A...>(args, std::index_sequence_for<A...>{});
  const std::function<void()> body = [&] { std::apply(kernel, values); };
  gridDim = {dims[0], dims[1], dims[2]};
  blockDim = {dims[3], dims[4], dims[5]};
  reverse = dims[6] != 0;
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  try {
    bool barriers = false;
    const unsigned blocks = gridDim.x * gridDim.y * gridDim.z;
    for (unsigned k = 0; k < blocks; ++k) {
      const unsigned b = in_order(k, blocks);
      blockIdx = {b % gridDim.x, b / gridDim.x % gridDim.y, b / (gridDim.x * gridDim.y)};
      poison_shared_memory();
      if (k == 0 || barriers) {
        barriers = run_block_as_fibers(body);   // the first block tells whether the kernel has barriers
      } else {
        for (unsigned j = 0; j < threads; ++j) {
          set_thread(in_order(j, threads));
          body();
        }
      }
    }
  } catch (const std::exception& e) {
    snprintf(error, error_size, "%s", e.what());
    return 1;
  }
  return 0;
}

}  // namespace c2emu

static inline void __syncthreads() {
  if (!c2emu::running)
    throw c2emu::Divergent("__syncthreads reached by " + c2emu::where() +
                           ", but the first block ran to its end without a barrier (a divergent barrier)");
  c2emu::yield_to_scheduler();
}

// one per kernel, appended after the kernel source by emulated_pycuda.py
#define C2EMU_EXPORT(fn)                                                                      \
  extern "C" int c2emu_launch_##fn(const unsigned* dims, void** args, char* error, int size) { \
    return c2emu::launch(&fn, dims, args, error, size);                                       \
  }                                                                                           \
  extern "C" const char* c2emu_signature_##fn() { return c2emu::signature(&fn); }
