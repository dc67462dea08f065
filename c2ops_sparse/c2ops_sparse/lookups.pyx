# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, auto_pickle=False
"""Pooled embedding lookups: SparseLengths{Sum,WeightedSum,Mean,PositionalWeightedSum}, their
gradients, and the fused 8-bit rowwise-quantized tables (conversions and lookups).

Every pooled lookup walks the output segments in order: segment m owns the next
LENGTHS[m] entries of INDICES, and its output row is the (weighted) sum of the
table rows they name. The segments are split between threads (a ``prange`` over
chunks of segments) by the number of rows each chunk reads, and the row
``PREFETCH_ROWS`` lookups ahead is prefetched so the random reads of a large
table overlap. float32 and fused 8-bit tables go through register-blocked C
kernels built for the baseline ISA, AVX2 and AVX-512 (the widest the CPU runs is
picked at import); float16 and float64 tables through the generic Cython loops.
Inputs are checked before any output is written. Schemas and gradient makers
live in ``_lookups_defs``.
"""
cimport numpy as cnp
import numpy as np
from cython.parallel cimport prange
from libc.stdint cimport uint8_t, uint16_t
from libc.string cimport memcpy

from c2core._runtime cimport Blob, OperatorBase, output_array
from c2core.errors import OperatorError

from c2ops_sparse._common cimport (check_indices, check_lengths, float_to_half, half_to_float, index_input,
                                   index_t, lengths_input, table_input, tensor_input, threads_for, value_t)

cnp.import_array()

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* Prefetch the cache lines of the row [p, p + bytes): the first and the last, then the
       ones between (up to 1 KB; the hardware prefetcher follows a longer row by itself).
       Spelled out as nested tests, which a constant row size predicts perfectly: a loop over
       the lines measured markedly slower on random rows. */
    static inline __attribute__((always_inline)) void c2_prefetch_rows(const void* p, Py_ssize_t bytes) {
        const char* c = (const char*)p;
        Py_ssize_t off, lim;
        if (bytes <= 0) return;
        __builtin_prefetch(c, 0, 3);
        __builtin_prefetch(c + bytes - 1, 0, 3);
        if (bytes > 65) {
            __builtin_prefetch(c + 64, 0, 3);
            if (bytes > 129) {
                __builtin_prefetch(c + 128, 0, 3);
                if (bytes > 193) {
                    __builtin_prefetch(c + 192, 0, 3);
                    lim = bytes < 1024 ? bytes : 1024;
                    for (off = 256; off < lim - 1; off += 64) __builtin_prefetch(c + off, 0, 3);
                }
            }
        }
    }
    /* x rounded to the nearest integer in [0, 255] (ties to even, as lrintf); NaN gives 0. */
    static inline uint8_t c2_round_u8(float x) {
        if (!(x >= 0.0f)) x = 0.0f;
        if (x > 255.0f) x = 255.0f;
        return (uint8_t)((x + 8388608.0f) - 8388608.0f);
    }
    static inline float c2_load_f32(const uint8_t* p) { float v; memcpy(&v, p, 4); return v; }
    static inline void c2_store_f32(uint8_t* p, float v) { memcpy(p, &v, 4); }

    /* ---- the float32 and fused 8-bit pooled lookups, register-blocked ----
       A segment's output row is built a block of columns at a time in vector
       accumulators (GCC vector extensions, or intrinsics where those compile badly),
       so a looked-up row goes straight into registers and never round-trips through
       the output. Each kernel exists as a baseline build and inside AVX2 and AVX-512
       target attributes; c2_lookups_use_isa picks the widest the CPU runs at import.
       The row pf lookups ahead is prefetched while the current one is added. */
    typedef float c2_f32x16 __attribute__((vector_size(64)));
    #define C2_LD(v, p) __builtin_memcpy(&(v), (p), sizeof(v))
    #define C2_ST(p, v) __builtin_memcpy((p), &(v), sizeof(v))
    #define C2_INLINE static inline __attribute__((always_inline))

    C2_INLINE Py_ssize_t c2_len_at(const void* lengths, int len64, Py_ssize_t m) {
        return len64 ? (Py_ssize_t)((const int64_t*)lengths)[m] : (Py_ssize_t)((const int32_t*)lengths)[m];
    }
    C2_INLINE Py_ssize_t c2_idx_at(const void* idx, int idx64, Py_ssize_t k) {
        return idx64 ? (Py_ssize_t)((const int64_t*)idx)[k] : (Py_ssize_t)((const int32_t*)idx)[k];
    }

    #define C2_POOL_ARGS(T) const T* data, Py_ssize_t D, const void* idx, int idx64, Py_ssize_t n, \
        const void* lengths, int len64, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t k, const float* weights, \
        int positional, int mean, float* out, Py_ssize_t pf
    #define C2_POOL_PASS data, D, idx, idx64, n, lengths, len64, m0, m1, k, weights, positional, mean, out, pf

    /* float32 rows. c2_acc_f32_<isa> adds the rows [lo, hi) of a segment, from column j0, into NA
       vector accumulators (w indexed like INDICES, NULL for no weights; with `prefetch` the row
       pf lookups ahead is prefetched). Its flags are constants at every call, so each combination
       compiles to its own tight loop. c2_pool_f32_<isa> does the segments [m0, m1), whose indices
       start at k: out[m] = sum of w * row over the segment (w = 1 without weights; positional
       weights are indexed by the position in the segment), times 1 / length for a mean. A row is
       built NACC * VW columns at a time, then VW, then one by one for the last few. Each ISA has
       its own vector width: a wider generic vector than the ISA's registers spills to memory. */
    typedef float c2_f32x4 __attribute__((vector_size(16)));
    typedef float c2_f32x8 __attribute__((vector_size(32)));
    #define C2_ACC_SPLIT(SUFFIX, NA, I64, W) do { \
        c2_acc_f32_##SUFFIX(data, D, idx, start, mid, w, pf, j0, acc, NA, I64, W, 1); \
        c2_acc_f32_##SUFFIX(data, D, idx, mid, end, w, pf, j0, acc, NA, I64, W, 0); } while (0)
    #define C2_ACC_BLOCK(SUFFIX, NA) do { \
        if (idx64) { if (w) C2_ACC_SPLIT(SUFFIX, NA, 1, 1); else C2_ACC_SPLIT(SUFFIX, NA, 1, 0); } \
        else { if (w) C2_ACC_SPLIT(SUFFIX, NA, 0, 1); else C2_ACC_SPLIT(SUFFIX, NA, 0, 0); } } while (0)
    #define C2_DEFINE_POOL_F32(SUFFIX, ATTR, VT, VW, NACC) \
    ATTR C2_INLINE void c2_acc_f32_##SUFFIX(const float* data, Py_ssize_t D, const void* idx, Py_ssize_t lo, \
            Py_ssize_t hi, const float* w, Py_ssize_t pf, Py_ssize_t j0, VT* acc, const int NA, \
            const int idx64, const int weighted, const int prefetch) { \
        VT a0 = acc[0], a1 = acc[NA > 1 ? 1 : 0], a2 = acc[NA > 2 ? 2 : 0], a3 = acc[NA > 3 ? 3 : 0], \
           a4 = acc[NA > 4 ? 4 : 0], a5 = acc[NA > 5 ? 5 : 0], a6 = acc[NA > 6 ? 6 : 0], a7 = acc[NA > 7 ? 7 : 0], x; \
        const Py_ssize_t row_bytes = D * (Py_ssize_t)sizeof(float); \
        Py_ssize_t kk; \
        for (kk = lo; kk < hi; kk++) { \
            const float* r; \
            if (prefetch) c2_prefetch_rows(data + c2_idx_at(idx, idx64, kk + pf) * D, row_bytes); \
            r = data + c2_idx_at(idx, idx64, kk) * D + j0; \
            if (weighted) { \
                const float s = w[kk]; \
                C2_LD(x, r); a0 += s * x; \
                if (NA > 1) { C2_LD(x, r + 1 * VW); a1 += s * x; } \
                if (NA > 2) { C2_LD(x, r + 2 * VW); a2 += s * x; } \
                if (NA > 3) { C2_LD(x, r + 3 * VW); a3 += s * x; } \
                if (NA > 4) { C2_LD(x, r + 4 * VW); a4 += s * x; } \
                if (NA > 5) { C2_LD(x, r + 5 * VW); a5 += s * x; } \
                if (NA > 6) { C2_LD(x, r + 6 * VW); a6 += s * x; } \
                if (NA > 7) { C2_LD(x, r + 7 * VW); a7 += s * x; } \
            } else { \
                C2_LD(x, r); a0 += x; \
                if (NA > 1) { C2_LD(x, r + 1 * VW); a1 += x; } \
                if (NA > 2) { C2_LD(x, r + 2 * VW); a2 += x; } \
                if (NA > 3) { C2_LD(x, r + 3 * VW); a3 += x; } \
                if (NA > 4) { C2_LD(x, r + 4 * VW); a4 += x; } \
                if (NA > 5) { C2_LD(x, r + 5 * VW); a5 += x; } \
                if (NA > 6) { C2_LD(x, r + 6 * VW); a6 += x; } \
                if (NA > 7) { C2_LD(x, r + 7 * VW); a7 += x; } \
            } \
        } \
        acc[0] = a0; \
        if (NA > 1) acc[1] = a1; \
        if (NA > 2) acc[2] = a2; \
        if (NA > 3) acc[3] = a3; \
        if (NA > 4) acc[4] = a4; \
        if (NA > 5) acc[5] = a5; \
        if (NA > 6) acc[6] = a6; \
        if (NA > 7) acc[7] = a7; \
    } \
    ATTR static void c2_pool_f32_##SUFFIX(C2_POOL_ARGS(float)) { \
        Py_ssize_t m, j, j0, kk, v; \
        for (m = m0; m < m1; m++) { \
            const Py_ssize_t L = c2_len_at(lengths, len64, m), start = k, end = k + L; \
            const float* w = weights == NULL ? NULL : (positional ? weights - start : weights); \
            const float inv = (mean && L > 0) ? 1.0f / (float)L : 1.0f; \
            const Py_ssize_t pf_mid = n - pf < start ? start : (n - pf > end ? end : n - pf); \
            float* o = out + m * D; \
            for (j0 = 0; j0 < D;) { \
                const Py_ssize_t mid = j0 == 0 ? pf_mid : start; \
                const int na = D - j0 >= NACC * VW ? NACC : (D - j0 >= VW ? 1 : 0); \
                if (na) { \
                    VT acc[8] = {{0}}; \
                    if (na == NACC) C2_ACC_BLOCK(SUFFIX, NACC); else C2_ACC_BLOCK(SUFFIX, 1); \
                    for (v = 0; v < na; v++) { \
                        if (mean) acc[v] *= inv; \
                        C2_ST(o + j0 + v * VW, acc[v]); \
                    } \
                    j0 += na * VW; \
                } else { \
                    const Py_ssize_t B = D - j0; \
                    float a[16] = {0}; \
                    for (kk = start; kk < end; kk++) { \
                        const float s = w ? w[kk] : 1.0f; \
                        const float* r = data + c2_idx_at(idx, idx64, kk) * D + j0; \
                        if (kk < mid) c2_prefetch_rows(data + c2_idx_at(idx, idx64, kk + pf) * D, \
                                                       D * (Py_ssize_t)sizeof(float)); \
                        for (j = 0; j < B; j++) a[j] += s * r[j]; \
                    } \
                    for (j = 0; j < B; j++) o[j0 + j] = mean ? a[j] * inv : a[j]; \
                    j0 = D; \
                } \
            } \
            k = end; \
        } \
    }
    C2_DEFINE_POOL_F32(base, , c2_f32x4, 4, 8)

    /* Fused 8-bit rows of C = D + 8 bytes (D uint8 values, float32 scale, float32 bias): each
       value adds (w * scale) * q + w * bias. The baseline accumulates in the output row with
       loops the compiler vectorizes; the AVX2 and AVX-512 versions keep 64 columns in registers
       and widen the bytes with vpmovzxbd (generic vector conversions compile to scalar code). */
    static void c2_pool_u8_base(C2_POOL_ARGS(uint8_t)) {
        const Py_ssize_t C = D + 8;
        Py_ssize_t m, kk, j;
        (void)positional;
        for (m = m0; m < m1; m++) {
            const Py_ssize_t L = c2_len_at(lengths, len64, m), end = k + L;
            float* o = out + m * D;
            for (j = 0; j < D; j++) o[j] = 0;
            for (kk = k; kk < end; kk++) {
                const uint8_t* r = data + c2_idx_at(idx, idx64, kk) * C;
                const float w = weights ? weights[kk] : 1.0f;
                float sb[2], scale, bias;
                if (kk + pf < n) c2_prefetch_rows(data + c2_idx_at(idx, idx64, kk + pf) * C, C);
                memcpy(sb, r + D, 8);
                scale = w * sb[0];
                bias = w * sb[1];
                for (j = 0; j < D; j++) o[j] += scale * (float)r[j] + bias;
            }
            if (mean && L > 0) {
                const float inv = 1.0f / (float)L;
                for (j = 0; j < D; j++) o[j] *= inv;
            }
            k = end;
        }
    }

    #if defined(__x86_64__) && defined(__GNUC__)
    #define C2_HAVE_ISA_VARIANTS 1
    #include <immintrin.h>
    C2_DEFINE_POOL_F32(avx2, __attribute__((target("avx2,fma"))), c2_f32x8, 8, 8)
    C2_DEFINE_POOL_F32(avx512, __attribute__((target("avx512f"))), c2_f32x16, 16, 4)

    /* 16 columns as one AVX-512 register or two AVX2 ones; ACC16 adds s * bytes + b. */
    typedef struct { __m256 lo, hi; } c2_v16x2;
    #define C2_ZERO_512 _mm512_setzero_ps()
    #define C2_SET1_512(x) _mm512_set1_ps(x)
    #define C2_ACC16_512(a, r, s, b) (a) = _mm512_add_ps((a), _mm512_fmadd_ps((s), \
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(r)))), (b)))
    #define C2_SCALE_512(a, x) (a) = _mm512_mul_ps((a), _mm512_set1_ps(x))
    #define C2_STORE_512(p, a) _mm512_storeu_ps((p), (a))
    #define C2_ZERO_256 ((c2_v16x2){_mm256_setzero_ps(), _mm256_setzero_ps()})
    #define C2_SET1_256(x) _mm256_set1_ps(x)
    #define C2_ACC16_256(a, r, s, b) do { \
        (a).lo = _mm256_add_ps((a).lo, _mm256_fmadd_ps((s), \
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(r)))), (b))); \
        (a).hi = _mm256_add_ps((a).hi, _mm256_fmadd_ps((s), \
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)((r) + 8)))), (b))); \
        } while (0)
    #define C2_SCALE_256(a, x) do { (a).lo = _mm256_mul_ps((a).lo, _mm256_set1_ps(x)); \
        (a).hi = _mm256_mul_ps((a).hi, _mm256_set1_ps(x)); } while (0)
    #define C2_STORE_256(p, a) do { _mm256_storeu_ps((p), (a).lo); _mm256_storeu_ps((p) + 8, (a).hi); } while (0)

    /* The rows [lo, hi) of a segment into NV (1 or 4) accumulators of 16 columns from j0. */
    #define C2_U8_ROWS(ISA, lo, hi, PREFETCH, NV) \
        for (kk = (lo); kk < (hi); kk++) { \
            const uint8_t* r = data + c2_idx_at(idx, idx64, kk) * C; \
            const float w = weights ? weights[kk] : 1.0f; \
            float sb[2]; \
            if (PREFETCH) c2_prefetch_rows(data + c2_idx_at(idx, idx64, kk + pf) * C, C); \
            memcpy(sb, r + D, 8); \
            s = C2_SET1_##ISA(w * sb[0]); \
            b = C2_SET1_##ISA(w * sb[1]); \
            r += j0; \
            C2_ACC16_##ISA(a0, r, s, b); \
            if (NV > 1) { C2_ACC16_##ISA(a1, r + 16, s, b); C2_ACC16_##ISA(a2, r + 32, s, b); \
                          C2_ACC16_##ISA(a3, r + 48, s, b); } \
        }
    #define C2_POOL_U8_SIMD(NAME, ATTR, ISA, V, VS) \
    ATTR static void NAME(C2_POOL_ARGS(uint8_t)) { \
        const Py_ssize_t C = D + 8; \
        Py_ssize_t m, kk, j, j0; \
        (void)positional; \
        for (m = m0; m < m1; m++) { \
            const Py_ssize_t L = c2_len_at(lengths, len64, m), start = k, end = k + L; \
            const Py_ssize_t pf_mid = n - pf < start ? start : (n - pf > end ? end : n - pf); \
            const float inv = (mean && L > 0) ? 1.0f / (float)L : 1.0f; \
            float* o = out + m * D; \
            VS s, b; \
            for (j0 = 0; j0 + 64 <= D; j0 += 64) { \
                V a0 = C2_ZERO_##ISA, a1 = C2_ZERO_##ISA, a2 = C2_ZERO_##ISA, a3 = C2_ZERO_##ISA; \
                const Py_ssize_t mid = j0 == 0 ? pf_mid : start; \
                C2_U8_ROWS(ISA, start, mid, 1, 4) \
                C2_U8_ROWS(ISA, mid, end, 0, 4) \
                if (mean) { C2_SCALE_##ISA(a0, inv); C2_SCALE_##ISA(a1, inv); \
                            C2_SCALE_##ISA(a2, inv); C2_SCALE_##ISA(a3, inv); } \
                C2_STORE_##ISA(o + j0, a0); C2_STORE_##ISA(o + j0 + 16, a1); \
                C2_STORE_##ISA(o + j0 + 32, a2); C2_STORE_##ISA(o + j0 + 48, a3); \
            } \
            for (; j0 + 16 <= D; j0 += 16) { \
                V a0 = C2_ZERO_##ISA, a1 = a0, a2 = a0, a3 = a0; \
                const Py_ssize_t mid = j0 == 0 ? pf_mid : start; \
                C2_U8_ROWS(ISA, start, mid, 1, 1) \
                C2_U8_ROWS(ISA, mid, end, 0, 1) \
                (void)a1; (void)a2; (void)a3; \
                if (mean) C2_SCALE_##ISA(a0, inv); \
                C2_STORE_##ISA(o + j0, a0); \
            } \
            if (j0 < D) { \
                const Py_ssize_t B = D - j0, mid = j0 == 0 ? pf_mid : start; \
                float a[16] = {0}; \
                for (kk = start; kk < end; kk++) { \
                    const uint8_t* r = data + c2_idx_at(idx, idx64, kk) * C; \
                    const float w = weights ? weights[kk] : 1.0f; \
                    float sb[2]; \
                    if (kk < mid) c2_prefetch_rows(data + c2_idx_at(idx, idx64, kk + pf) * C, C); \
                    memcpy(sb, r + D, 8); \
                    for (j = 0; j < B; j++) a[j] += (w * sb[0]) * (float)r[j0 + j] + w * sb[1]; \
                } \
                for (j = 0; j < B; j++) o[j0 + j] = mean ? a[j] * inv : a[j]; \
            } \
            k = end; \
        } \
    }
    C2_POOL_U8_SIMD(c2_pool_u8_avx512, __attribute__((target("avx512f"))), 512, __m512, __m512)
    C2_POOL_U8_SIMD(c2_pool_u8_avx2, __attribute__((target("avx2,fma"))), 256, c2_v16x2, __m256)
    #endif
    /* Whether any index is outside [0, bound): a branch-free reduction the compiler vectorizes
       (a negative index compares as a huge unsigned one). check_indices then names the culprit. */
    C2_INLINE int c2_any_bad_index_body(const void* idx, int idx64, Py_ssize_t n, Py_ssize_t bound) {
        Py_ssize_t k;
        if (idx64) {
            const uint64_t* p = (const uint64_t*)idx;
            const uint64_t b = (uint64_t)bound;
            uint64_t bad = 0;
            for (k = 0; k < n; k++) bad |= (uint64_t)(p[k] >= b);
            return bad != 0;
        } else {
            const uint32_t* p = (const uint32_t*)idx;
            const uint32_t b = bound > 0x7fffffff ? 0x80000000u : (uint32_t)bound;
            uint32_t bad = 0;
            for (k = 0; k < n; k++) bad |= (uint32_t)(p[k] >= b);
            return bad != 0;
        }
    }
    static int c2_any_bad_index_base(const void* idx, int idx64, Py_ssize_t n, Py_ssize_t bound) {
        return c2_any_bad_index_body(idx, idx64, n, bound);
    }
    #ifdef C2_HAVE_ISA_VARIANTS
    __attribute__((target("avx2"))) static int c2_any_bad_index_avx2(const void* idx, int idx64, Py_ssize_t n,
                                                                   Py_ssize_t bound) {
        return c2_any_bad_index_body(idx, idx64, n, bound);
    }
    #endif
    static int (*c2_any_bad_index)(const void*, int, Py_ssize_t, Py_ssize_t) = c2_any_bad_index_base;

    typedef void (*c2_pool_f32_fn)(C2_POOL_ARGS(float));
    typedef void (*c2_pool_u8_fn)(C2_POOL_ARGS(uint8_t));
    static c2_pool_f32_fn c2_pool_f32 = c2_pool_f32_base;
    static c2_pool_u8_fn c2_pool_u8 = c2_pool_u8_base;

    /* Use the widest of baseline (0), AVX2+FMA (1), AVX-512F (2) up to `limit` the CPU has; returns it. */
    static int c2_lookups_use_isa(int limit) {
        c2_pool_f32 = c2_pool_f32_base;
        c2_pool_u8 = c2_pool_u8_base;
        c2_any_bad_index = c2_any_bad_index_base;
    #ifdef C2_HAVE_ISA_VARIANTS
        __builtin_cpu_init();
        if (limit >= 1 && __builtin_cpu_supports("avx2")) c2_any_bad_index = c2_any_bad_index_avx2;
        if (limit >= 2 && __builtin_cpu_supports("avx512f")) {
            c2_pool_f32 = c2_pool_f32_avx512;
            c2_pool_u8 = c2_pool_u8_avx512;
            return 2;
        }
        if (limit >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            c2_pool_f32 = c2_pool_f32_avx2;
            c2_pool_u8 = c2_pool_u8_avx2;
            return 1;
        }
    #endif
        return 0;
    }
    """
    void prefetch_rows "c2_prefetch_rows"(const void* p, Py_ssize_t nbytes) noexcept nogil
    uint8_t round_u8 "c2_round_u8"(float x) noexcept nogil
    float load_f32 "c2_load_f32"(const uint8_t* p) noexcept nogil
    void store_f32 "c2_store_f32"(uint8_t* p, float v) noexcept nogil
    void c2_pool_f32(const float* data, Py_ssize_t D, const void* idx, int idx64, Py_ssize_t n,
                     const void* lengths, int len64, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t k,
                     const float* weights, int positional, int mean, float* out, Py_ssize_t pf) noexcept nogil
    void c2_pool_u8(const uint8_t* data, Py_ssize_t D, const void* idx, int idx64, Py_ssize_t n,
                    const void* lengths, int len64, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t k,
                    const float* weights, int positional, int mean, float* out, Py_ssize_t pf) noexcept nogil
    int c2_lookups_use_isa(int limit) noexcept nogil
    int c2_any_bad_index(const void* idx, int idx64, Py_ssize_t n, Py_ssize_t bound) noexcept nogil


ctypedef fused acc_t:
    float
    double

cdef enum:
    PREFETCH_ROWS = 48      # lookups between a row's prefetch and its read (measured: 32-64 alike)
    MAX_CHUNKS = 256        # threads a lookup is split between at most

cdef Py_ssize_t _prefetch_distance = PREFETCH_ROWS
cdef int _isa = c2_lookups_use_isa(2)


def _use_isa(int limit=2):
    """Pick the widest SIMD kernels up to ``limit`` (0 baseline, 1 AVX2, 2 AVX-512) this CPU runs; returns it.

    Private: the tests run every variant against the same references.
    """
    global _isa
    _isa = c2_lookups_use_isa(limit)
    return _isa


def _set_prefetch_distance(Py_ssize_t rows):
    """Lookups between a row's prefetch and its read (private, for tuning); returns the previous value."""
    global _prefetch_distance
    previous = _prefetch_distance
    _prefetch_distance = max(rows, 1)
    return previous


cdef enum Weighting:
    W_NONE = 0              # plain sum (or mean)
    W_PER_INDEX = 1         # WEIGHTS[k] scales the k-th looked-up row
    W_POSITIONAL = 2        # WEIGHTS[p] scales the row at position p of its segment

cdef enum GradKind:
    G_SUM = 0
    G_MEAN = 1
    G_WEIGHTED = 2


# -- lengths: int32 or int64, read through one helper ---------------------------

cdef inline Py_ssize_t _length(const void* lengths, bint len64, Py_ssize_t m) noexcept nogil:
    if len64:
        return <Py_ssize_t>(<const long long*>lengths)[m]
    return (<const int*>lengths)[m]


cdef Py_ssize_t _max_length(const void* lengths, bint len64, Py_ssize_t M) noexcept nogil:
    cdef Py_ssize_t m, L, best = 0
    for m in range(M):
        L = _length(lengths, len64, m)
        if L > best:
            best = L
    return best


cdef int _split(const void* lengths, bint len64, Py_ssize_t M, Py_ssize_t n, int nt,
                Py_ssize_t* seg, Py_ssize_t* pos) noexcept nogil:
    """Chunk t covers segments [seg[t], seg[t+1]) whose indices start at pos[t].

    A segment costs its length plus one (its output row), so the chunks read about
    as many rows each whatever the lengths are. Returns the number of chunks.
    """
    cdef Py_ssize_t m, L, k = 0, cum = 0, total = n + M
    cdef int t = 1
    if nt > MAX_CHUNKS:
        nt = MAX_CHUNKS
    if nt < 1:
        nt = 1
    seg[0] = 0
    pos[0] = 0
    for m in range(M):
        while t < nt and cum * nt >= total * t:
            seg[t] = m
            pos[t] = k
            t += 1
        L = _length(lengths, len64, m)
        cum += L + 1
        k += L
    while t <= nt:
        seg[t] = M
        pos[t] = k
        t += 1
    return nt


# -- row primitives: simple contiguous loops the compiler vectorizes -------------

cdef inline void _zero(acc_t* o, Py_ssize_t D) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(D):
        o[j] = 0


cdef inline void _add_row(acc_t* o, const value_t* r, Py_ssize_t D) noexcept nogil:
    cdef Py_ssize_t j
    if value_t is uint16_t:
        for j in range(D):
            o[j] += half_to_float(r[j])
    else:
        for j in range(D):
            o[j] += r[j]


cdef inline void _axpy_row(acc_t* o, const value_t* r, acc_t w, Py_ssize_t D) noexcept nogil:
    cdef Py_ssize_t j
    if value_t is uint16_t:
        for j in range(D):
            o[j] += w * half_to_float(r[j])
    else:
        for j in range(D):
            o[j] += w * r[j]


cdef inline void _scale_row(acc_t* o, acc_t s, Py_ssize_t D) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(D):
        o[j] *= s


cdef inline acc_t _dot_row(const acc_t* g, const value_t* r, Py_ssize_t D) noexcept nogil:
    cdef Py_ssize_t j
    cdef acc_t s = 0
    if value_t is uint16_t:
        for j in range(D):
            s += g[j] * half_to_float(r[j])
    else:
        for j in range(D):
            s += g[j] * r[j]
    return s


# -- SparseLengths{Sum,WeightedSum,Mean,PositionalWeightedSum} -------------------

cdef void _pool_chunk(const value_t* data, Py_ssize_t D, const index_t* idx, Py_ssize_t n,
                      const void* lengths, bint len64, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t k,
                      const acc_t* weights, int weighting, bint mean, acc_t* out) noexcept nogil:
    cdef Py_ssize_t m, L, start, end, row_bytes = D * sizeof(value_t)
    cdef acc_t* o
    cdef acc_t w
    for m in range(m0, m1):
        o = out + m * D
        _zero(o, D)
        L = _length(lengths, len64, m)
        start = k
        end = k + L
        while k < end:
            if k + _prefetch_distance < n:
                prefetch_rows(data + idx[k + _prefetch_distance] * D, row_bytes)
            if weighting == W_NONE:
                _add_row(o, data + idx[k] * D, D)
            else:
                w = weights[k] if weighting == W_PER_INDEX else weights[k - start]
                _axpy_row(o, data + idx[k] * D, w, D)
            k += 1
        if mean and L > 0:
            _scale_row(o, (<acc_t>1) / L, D)


cdef void _pool(const value_t* data, Py_ssize_t D, const index_t* idx, Py_ssize_t n,
                const void* lengths, bint len64, Py_ssize_t M, const acc_t* weights, int weighting,
                bint mean, acc_t* out) noexcept nogil:
    # a float64 table accumulates in float64; float32 and float16 tables in float32
    if value_t is double:
        if acc_t is float:
            return
    else:
        if acc_t is double:
            return
    cdef Py_ssize_t seg[MAX_CHUNKS + 1]
    cdef Py_ssize_t pos[MAX_CHUNKS + 1]
    cdef int t, nt = threads_for((n + M) * D)
    if nt <= 1:
        _pool_chunk_any(data, D, idx, n, lengths, len64, 0, M, 0, weights, weighting, mean, out)
        return
    nt = _split(lengths, len64, M, n, nt, seg, pos)
    for t in prange(nt, num_threads=nt, schedule="static"):
        _pool_chunk_any(data, D, idx, n, lengths, len64, seg[t], seg[t + 1], pos[t], weights, weighting, mean,
                        out)


cdef inline void _pool_chunk_any(const value_t* data, Py_ssize_t D, const index_t* idx, Py_ssize_t n,
                                 const void* lengths, bint len64, Py_ssize_t m0, Py_ssize_t m1, Py_ssize_t k,
                                 const acc_t* weights, int weighting, bint mean, acc_t* out) noexcept nogil:
    """float32 tables take the register-blocked SIMD kernel; float64 and float16 ones the generic loop."""
    if value_t is float:
        if acc_t is float:
            c2_pool_f32(data, D, idx, index_t is longlong, n, lengths, len64, m0, m1, k, weights,
                        weighting == W_POSITIONAL, mean, out, _prefetch_distance)
            return
    _pool_chunk(data, D, idx, n, lengths, len64, m0, m1, k, weights, weighting, mean, out)


cdef void _pool_typed(int dt, bint idx64, const void* data, Py_ssize_t D, const void* idx, Py_ssize_t n,
                      const void* lengths, bint len64, Py_ssize_t M, const void* weights, int weighting,
                      bint mean, void* out) noexcept nogil:
    """Dispatch on the table dtype (0 float32, 1 float64, 2 float16) and the index width."""
    if dt == 1:
        if idx64:
            _pool(<const double*>data, D, <const long long*>idx, n, lengths, len64, M, <const double*>weights,
                  weighting, mean, <double*>out)
        else:
            _pool(<const double*>data, D, <const int*>idx, n, lengths, len64, M, <const double*>weights,
                  weighting, mean, <double*>out)
    elif dt == 2:
        if idx64:
            _pool(<const uint16_t*>data, D, <const long long*>idx, n, lengths, len64, M, <const float*>weights,
                  weighting, mean, <float*>out)
        else:
            _pool(<const uint16_t*>data, D, <const int*>idx, n, lengths, len64, M, <const float*>weights,
                  weighting, mean, <float*>out)
    else:
        if idx64:
            _pool(<const float*>data, D, <const long long*>idx, n, lengths, len64, M, <const float*>weights,
                  weighting, mean, <float*>out)
        else:
            _pool(<const float*>data, D, <const int*>idx, n, lengths, len64, M, <const float*>weights,
                  weighting, mean, <float*>out)


cdef inline int _table_code(cnp.ndarray data) noexcept:
    cdef int t = cnp.PyArray_TYPE(data)
    if t == cnp.NPY_FLOAT64:
        return 1
    if t == cnp.NPY_FLOAT16:
        return 2
    return 0


cdef str _blob_label(OperatorBase op, Py_ssize_t i):
    return f"input {i} '{(<Blob>op.inputs[i]).name}'"


cdef Py_ssize_t _row_size(cnp.ndarray a) noexcept:
    cdef Py_ssize_t k, D = 1
    for k in range(1, cnp.PyArray_NDIM(a)):
        D *= cnp.PyArray_DIMS(a)[k]
    return D


cdef int _check_indices(OperatorBase op, Py_ssize_t i, cnp.ndarray idx, Py_ssize_t bound) except -1:
    """check_indices with a vectorized first pass: the common, valid case costs a fraction of a scan."""
    cdef int bad
    cdef bint idx64 = cnp.PyArray_TYPE(idx) == cnp.NPY_INT64
    with nogil:
        bad = c2_any_bad_index(cnp.PyArray_DATA(idx), idx64, cnp.PyArray_SIZE(idx), bound)
    if bad:
        check_indices(op, i, idx, bound)
    return 0


cdef cnp.ndarray _vector_input(OperatorBase op, Py_ssize_t i, str what):
    """Input i as a 1-D int32/int64 array (INDICES)."""
    cdef cnp.ndarray a = index_input(op, i)
    if cnp.PyArray_NDIM(a) != 1:
        raise OperatorError(f"{_blob_label(op, i)} ({what}) must be a 1-D vector, got shape {(<object>a).shape}")
    return a


cdef cnp.ndarray _weights_input(OperatorBase op, Py_ssize_t i, int typenum, str dtype_name):
    cdef cnp.ndarray w = tensor_input(op, i)
    if cnp.PyArray_TYPE(w) != typenum:
        raise OperatorError(f"{_blob_label(op, i)} (weights) has dtype {w.dtype}; {op.type} needs {dtype_name} "
                            "weights here")
    if cnp.PyArray_NDIM(w) != 1:
        raise OperatorError(f"{_blob_label(op, i)} (weights) must be a 1-D vector, got shape {(<object>w).shape}")
    return w


cdef class _SparseLengthsPoolOp(OperatorBase):
    """(DATA, [WEIGHTS,] INDICES, LENGTHS) -> OUTPUT; the subclasses pick the reduction."""
    cdef int weighting
    cdef bint mean
    cdef Py_ssize_t i_idx, i_len

    cdef void _configure(self, int weighting, bint mean):
        self.weighting = weighting
        self.mean = mean
        self.i_idx = 1 if weighting == W_NONE else 2
        self.i_len = self.i_idx + 1

    cdef int run_c(self) except -1:
        cdef cnp.ndarray data = table_input(self, 0)
        cdef cnp.ndarray idx = _vector_input(self, self.i_idx, "INDICES")
        cdef cnp.ndarray lengths = lengths_input(self, self.i_len)
        cdef cnp.ndarray w = None
        cdef int dt = _table_code(data)
        cdef Py_ssize_t n = cnp.PyArray_SIZE(idx), M = cnp.PyArray_DIMS(lengths)[0]
        cdef Py_ssize_t N = cnp.PyArray_DIMS(data)[0], D = _row_size(data), longest
        cdef bint len64 = cnp.PyArray_TYPE(lengths) == cnp.NPY_INT64
        cdef const void* wp = NULL
        if self.weighting != W_NONE:
            w = _weights_input(self, 1, cnp.NPY_FLOAT64 if dt == 1 else cnp.NPY_FLOAT32,
                               "float64" if dt == 1 else "float32")
            if self.weighting == W_PER_INDEX and cnp.PyArray_SIZE(w) != n:
                raise OperatorError(f"{_blob_label(self, 1)} has {cnp.PyArray_SIZE(w)} weights but "
                                    f"{_blob_label(self, self.i_idx)} has {n} indices; they must match")
            wp = cnp.PyArray_DATA(w)
        check_lengths(self, self.i_len, lengths, n)
        _check_indices(self, self.i_idx, idx, N)
        if self.weighting == W_POSITIONAL:
            longest = _max_length(cnp.PyArray_DATA(lengths), len64, M)
            if cnp.PyArray_SIZE(w) < longest:
                raise OperatorError(f"{_blob_label(self, 1)} has {cnp.PyArray_SIZE(w)} positional weights but "
                                    f"the longest segment has {longest} indices; it needs one weight per position")
        cdef cnp.ndarray out = output_array(<Blob>self.outputs[0], (M,) + (<object>data).shape[1:],
                                            np.float64 if dt == 1 else np.float32)
        with nogil:
            _pool_typed(dt, cnp.PyArray_TYPE(idx) == cnp.NPY_INT64, cnp.PyArray_DATA(data), D,
                        cnp.PyArray_DATA(idx), n, cnp.PyArray_DATA(lengths), len64, M, wp, self.weighting,
                        self.mean, cnp.PyArray_DATA(out))
        return 0


# pooling op type -> (weighting, mean)
_POOL_KINDS = {
    "SparseLengthsSum": (W_NONE, False),
    "SparseLengthsMean": (W_NONE, True),
    "SparseLengthsWeightedSum": (W_PER_INDEX, False),
    "SparseLengthsPositionalWeightedSum": (W_POSITIONAL, False),
}


cdef class SparseLengthsPoolOp(_SparseLengthsPoolOp):
    """Every SparseLengths{Sum,Mean,WeightedSum,PositionalWeightedSum}; its type picks the pooling at setup."""

    def setup(self):
        weighting, mean = _POOL_KINDS[self.type]
        self._configure(weighting, mean)


# -- gradients: one row of GO per looked-up index --------------------------------

cdef void _grad_chunk(const acc_t* go, Py_ssize_t D, const void* lengths, bint len64, Py_ssize_t m0,
                      Py_ssize_t m1, Py_ssize_t k, const acc_t* w, int kind, acc_t* dv) noexcept nogil:
    cdef Py_ssize_t m, L, end, j
    cdef const acc_t* g
    cdef acc_t* o
    cdef acc_t s
    for m in range(m0, m1):
        g = go + m * D
        L = _length(lengths, len64, m)
        end = k + L
        s = (<acc_t>1) / L if (kind == G_MEAN and L > 0) else 1
        while k < end:
            o = dv + k * D
            if kind == G_SUM:
                for j in range(D):
                    o[j] = g[j]
            else:
                if kind == G_WEIGHTED:
                    s = w[k]
                for j in range(D):
                    o[j] = s * g[j]
            k += 1


cdef void _grad(const acc_t* go, Py_ssize_t D, const void* lengths, bint len64, Py_ssize_t M, Py_ssize_t n,
                const acc_t* w, int kind, acc_t* dv) noexcept nogil:
    cdef Py_ssize_t seg[MAX_CHUNKS + 1]
    cdef Py_ssize_t pos[MAX_CHUNKS + 1]
    cdef int t, nt = threads_for(n * D)
    if nt <= 1:
        _grad_chunk(go, D, lengths, len64, 0, M, 0, w, kind, dv)
        return
    nt = _split(lengths, len64, M, n, nt, seg, pos)
    for t in prange(nt, num_threads=nt, schedule="static"):
        _grad_chunk(go, D, lengths, len64, seg[t], seg[t + 1], pos[t], w, kind, dv)


cdef void _grad_main_chunk(const acc_t* go, Py_ssize_t D, const void* lengths, bint len64, Py_ssize_t m0,
                           Py_ssize_t m1, Py_ssize_t k, const acc_t* w, const value_t* data, const index_t* idx,
                           acc_t* dv, acc_t* dw) noexcept nogil:
    cdef Py_ssize_t m, L, end, j
    cdef const acc_t* g
    cdef acc_t* o
    cdef acc_t s
    for m in range(m0, m1):
        g = go + m * D
        L = _length(lengths, len64, m)
        end = k + L
        while k < end:
            o = dv + k * D
            s = w[k]
            for j in range(D):
                o[j] = s * g[j]
            dw[k] = _dot_row(g, data + idx[k] * D, D)
            k += 1


cdef void _grad_main(const acc_t* go, Py_ssize_t D, const void* lengths, bint len64, Py_ssize_t M,
                     Py_ssize_t n, const acc_t* w, const value_t* data, const index_t* idx, acc_t* dv,
                     acc_t* dw) noexcept nogil:
    if value_t is double:
        if acc_t is float:
            return
    else:
        if acc_t is double:
            return
    cdef Py_ssize_t seg[MAX_CHUNKS + 1]
    cdef Py_ssize_t pos[MAX_CHUNKS + 1]
    cdef int t, nt = threads_for(2 * n * D)
    if nt <= 1:
        _grad_main_chunk(go, D, lengths, len64, 0, M, 0, w, data, idx, dv, dw)
        return
    nt = _split(lengths, len64, M, n, nt, seg, pos)
    for t in prange(nt, num_threads=nt, schedule="static"):
        _grad_main_chunk(go, D, lengths, len64, seg[t], seg[t + 1], pos[t], w, data, idx, dv, dw)


cdef void _grad_main_typed(int dt, bint idx64, const void* go, Py_ssize_t D, const void* lengths, bint len64,
                           Py_ssize_t M, Py_ssize_t n, const void* w, const void* data, const void* idx,
                           void* dv, void* dw) noexcept nogil:
    if dt == 1:
        if idx64:
            _grad_main(<const double*>go, D, lengths, len64, M, n, <const double*>w, <const double*>data,
                       <const long long*>idx, <double*>dv, <double*>dw)
        else:
            _grad_main(<const double*>go, D, lengths, len64, M, n, <const double*>w, <const double*>data,
                       <const int*>idx, <double*>dv, <double*>dw)
    elif dt == 2:
        if idx64:
            _grad_main(<const float*>go, D, lengths, len64, M, n, <const float*>w, <const uint16_t*>data,
                       <const long long*>idx, <float*>dv, <float*>dw)
        else:
            _grad_main(<const float*>go, D, lengths, len64, M, n, <const float*>w, <const uint16_t*>data,
                       <const int*>idx, <float*>dv, <float*>dw)
    else:
        if idx64:
            _grad_main(<const float*>go, D, lengths, len64, M, n, <const float*>w, <const float*>data,
                       <const long long*>idx, <float*>dv, <float*>dw)
        else:
            _grad_main(<const float*>go, D, lengths, len64, M, n, <const float*>w, <const float*>data,
                       <const int*>idx, <float*>dv, <float*>dw)


cdef class _SparseLengthsGradientOp(OperatorBase):
    """Gradient of a pooled lookup with respect to the looked-up rows (the values of a GradientSlice).

    Inputs: [WEIGHTS,] SEGMENT_GRADS, LENGTHS, [INDICES] or, with the main input,
    WEIGHTS, SEGMENT_GRADS, LENGTHS, DATA, INDICES (then also the weights' gradient, when the op
    has a second output).
    """
    cdef int kind
    cdef bint with_indices, main_input
    cdef Py_ssize_t i_go, i_len, i_idx, i_data

    cdef void _configure(self, int kind, bint with_indices, bint main_input):
        self.kind = kind
        self.with_indices = with_indices or main_input
        self.main_input = main_input
        self.i_go = 1 if kind == G_WEIGHTED else 0
        self.i_len = self.i_go + 1
        self.i_data = self.i_len + 1 if main_input else -1
        self.i_idx = (self.i_len + 2 if main_input else self.i_len + 1) if self.with_indices else -1

    cdef int run_c(self) except -1:
        cdef cnp.ndarray go = tensor_input(self, self.i_go)
        cdef int gt = cnp.PyArray_TYPE(go)
        if gt != cnp.NPY_FLOAT32 and gt != cnp.NPY_FLOAT64:
            raise OperatorError(f"{_blob_label(self, self.i_go)} (segment gradients) has dtype {go.dtype}; "
                                f"{self.type} takes float32 or float64")
        if cnp.PyArray_NDIM(go) < 1:
            raise OperatorError(f"{_blob_label(self, self.i_go)} (segment gradients) must have at least one "
                                "dimension, got a scalar")
        cdef cnp.ndarray lengths = lengths_input(self, self.i_len)
        cdef Py_ssize_t M = cnp.PyArray_DIMS(lengths)[0], D = _row_size(go), n, N = 0
        if cnp.PyArray_DIMS(go)[0] != M:
            raise OperatorError(f"{_blob_label(self, self.i_go)} (segment gradients) has {cnp.PyArray_DIMS(go)[0]} "
                                f"rows but {_blob_label(self, self.i_len)} has {M} segments; they must match")
        cdef cnp.ndarray idx = None, data = None, w = None
        cdef int dt = 1 if gt == cnp.NPY_FLOAT64 else 0
        if self.with_indices:
            idx = _vector_input(self, self.i_idx, "INDICES")
            n = check_lengths(self, self.i_len, lengths, cnp.PyArray_SIZE(idx))
        else:
            n = check_lengths(self, self.i_len, lengths, -1)
        if self.kind == G_WEIGHTED:
            w = _weights_input(self, 0, gt, str(go.dtype))
            if cnp.PyArray_SIZE(w) != n:
                raise OperatorError(f"{_blob_label(self, 0)} has {cnp.PyArray_SIZE(w)} weights but "
                                    f"{_blob_label(self, self.i_len)} sums to {n}; they must match")
        if self.main_input:
            data = table_input(self, self.i_data)
            dt = _table_code(data)
            if (dt == 1) != (gt == cnp.NPY_FLOAT64):
                raise OperatorError(f"{_blob_label(self, self.i_data)} (DATA) has dtype {data.dtype} but the "
                                    f"segment gradients are {go.dtype}; a {data.dtype} table has "
                                    f"{'float64' if dt == 1 else 'float32'} gradients")
            if _row_size(data) != D:
                raise OperatorError(f"{_blob_label(self, self.i_data)} (DATA) has rows of {_row_size(data)} "
                                    f"elements but the segment gradients have rows of {D}; they must match")
            N = cnp.PyArray_DIMS(data)[0]
            _check_indices(self, self.i_idx, idx, N)
        cdef bint len64 = cnp.PyArray_TYPE(lengths) == cnp.NPY_INT64
        cdef cnp.ndarray dv = output_array(<Blob>self.outputs[0], (n,) + (<object>go).shape[1:], go.dtype)
        cdef cnp.ndarray dw = None
        if self.main_input and len(self.outputs) > 1:   # with one output Caffe2 skips the weights' gradient
            dw = output_array(<Blob>self.outputs[1], (n,), go.dtype)
            with nogil:
                _grad_main_typed(dt, cnp.PyArray_TYPE(idx) == cnp.NPY_INT64, cnp.PyArray_DATA(go), D,
                                 cnp.PyArray_DATA(lengths), len64, M, n, cnp.PyArray_DATA(w),
                                 cnp.PyArray_DATA(data), cnp.PyArray_DATA(idx), cnp.PyArray_DATA(dv),
                                 cnp.PyArray_DATA(dw))
            return 0
        cdef const void* wp = cnp.PyArray_DATA(w) if w is not None else NULL
        with nogil:
            if gt == cnp.NPY_FLOAT64:
                _grad(<const double*>cnp.PyArray_DATA(go), D, cnp.PyArray_DATA(lengths), len64, M, n,
                      <const double*>wp, self.kind, <double*>cnp.PyArray_DATA(dv))
            else:
                _grad(<const float*>cnp.PyArray_DATA(go), D, cnp.PyArray_DATA(lengths), len64, M, n,
                      <const float*>wp, self.kind, <float*>cnp.PyArray_DATA(dv))
        return 0


# gradient op type -> (kind, takes INDICES, takes DATA as its main input)
_GRADIENT_KINDS = {
    "SparseLengthsSumGradient": (G_SUM, False, False),
    "SparseLengthsIndicesInGradientSumGradient": (G_SUM, True, False),
    "SparseLengthsMeanGradient": (G_MEAN, False, False),
    "SparseLengthsIndicesInGradientMeanGradient": (G_MEAN, True, False),
    "SparseLengthsWeightedSumGradient": (G_WEIGHTED, False, False),
    "SparseLengthsIndicesInGradientWeightedSumGradient": (G_WEIGHTED, True, False),
    "SparseLengthsWeightedSumWithMainInputGradient": (G_WEIGHTED, True, True),
    "SparseLengthsIndicesInGradientWeightedSumWithMainInputGradient": (G_WEIGHTED, True, True),
}


cdef class SparseLengthsGradientOp(_SparseLengthsGradientOp):
    """Every SparseLengths*Gradient op; its type picks the kind and inputs at setup."""

    def setup(self):
        kind, with_indices, main_input = _GRADIENT_KINDS[self.type]
        self._configure(kind, with_indices, main_input)


# -- fused 8-bit rowwise tables: | D uint8 values | float32 scale | float32 bias | --

cdef void _quantize_row(const value_t* x, Py_ssize_t C, uint8_t* out) noexcept nogil:
    cdef Py_ssize_t j
    cdef float v, lo, hi, rng, inv
    if C == 0:
        store_f32(out, 0)
        store_f32(out + 4, 0)
        return
    if value_t is uint16_t:
        lo = hi = half_to_float(x[0])
        for j in range(1, C):
            v = half_to_float(x[j])
            lo = v if v < lo else lo
            hi = v if v > hi else hi
    else:
        lo = hi = <float>x[0]
        for j in range(1, C):
            v = <float>x[j]
            lo = v if v < lo else lo
            hi = v if v > hi else hi
    rng = hi - lo
    inv = 255.0 / (rng + <float>1e-8)
    if value_t is uint16_t:
        for j in range(C):
            out[j] = round_u8((half_to_float(x[j]) - lo) * inv)
    else:
        for j in range(C):
            out[j] = round_u8((<float>x[j] - lo) * inv)
    store_f32(out + C, rng / <float>255.0)
    store_f32(out + C + 4, lo)


cdef void _quantize(const value_t* x, Py_ssize_t rows, Py_ssize_t C, uint8_t* out) noexcept nogil:
    cdef Py_ssize_t r
    for r in prange(rows, num_threads=threads_for(rows * C), schedule="static"):
        _quantize_row(x + r * C, C, out + r * (C + 8))


cdef void _dequantize(const uint8_t* q, Py_ssize_t rows, Py_ssize_t D, value_t* out) noexcept nogil:
    cdef Py_ssize_t r, j
    cdef float scale, bias
    cdef const uint8_t* row
    cdef value_t* o
    for r in prange(rows, num_threads=threads_for(rows * D), schedule="static"):
        row = q + r * (D + 8)
        o = out + r * D
        scale = load_f32(row + D)
        bias = load_f32(row + D + 4)
        if value_t is uint16_t:
            for j in range(D):
                o[j] = float_to_half(row[j] * scale + bias)
        else:
            for j in range(D):
                o[j] = row[j] * scale + bias


cdef void _fused_pool(const uint8_t* data, Py_ssize_t D, const void* idx, bint idx64, Py_ssize_t n,
                      const void* lengths, bint len64, Py_ssize_t M, const float* weights, bint mean,
                      float* out) noexcept nogil:
    cdef Py_ssize_t seg[MAX_CHUNKS + 1]
    cdef Py_ssize_t pos[MAX_CHUNKS + 1]
    cdef int t, nt = threads_for((n + M) * D)
    if nt <= 1:
        c2_pool_u8(data, D, idx, idx64, n, lengths, len64, 0, M, 0, weights, 0, mean, out, _prefetch_distance)
        return
    nt = _split(lengths, len64, M, n, nt, seg, pos)
    for t in prange(nt, num_threads=nt, schedule="static"):
        c2_pool_u8(data, D, idx, idx64, n, lengths, len64, seg[t], seg[t + 1], pos[t], weights, 0, mean, out,
                   _prefetch_distance)


cdef class _QuantizeOp(OperatorBase):
    """FloatToFused8BitRowwiseQuantized / HalfFloatToFused8BitRowwiseQuantized: each row along the last axis."""
    cdef int typenum
    cdef str dtype_name

    cdef int run_c(self) except -1:
        cdef cnp.ndarray x = tensor_input(self, 0)
        if cnp.PyArray_TYPE(x) != self.typenum:
            raise OperatorError(f"{_blob_label(self, 0)} has dtype {x.dtype}; {self.type} takes {self.dtype_name} "
                                "input")
        cdef int nd = cnp.PyArray_NDIM(x), k
        if nd < 1:
            raise OperatorError(f"{_blob_label(self, 0)} must have at least one dimension, got a scalar")
        cdef Py_ssize_t C = cnp.PyArray_DIMS(x)[nd - 1], rows = 1
        for k in range(nd - 1):
            rows *= cnp.PyArray_DIMS(x)[k]
        shape = (<object>x).shape
        cdef cnp.ndarray out = output_array(<Blob>self.outputs[0], shape[:nd - 1] + (C + 8,), np.uint8)
        with nogil:
            if self.typenum == cnp.NPY_FLOAT16:
                _quantize(<const uint16_t*>cnp.PyArray_DATA(x), rows, C, <uint8_t*>cnp.PyArray_DATA(out))
            else:
                _quantize(<const float*>cnp.PyArray_DATA(x), rows, C, <uint8_t*>cnp.PyArray_DATA(out))
        return 0


cdef class FloatToFused8BitRowwiseQuantizedOp(_QuantizeOp):
    def setup(self):
        self.typenum, self.dtype_name = cnp.NPY_FLOAT32, "float32"


cdef class HalfFloatToFused8BitRowwiseQuantizedOp(_QuantizeOp):
    def setup(self):
        self.typenum, self.dtype_name = cnp.NPY_FLOAT16, "float16"


cdef cnp.ndarray _fused_input(OperatorBase op, Py_ssize_t i):
    cdef cnp.ndarray q = tensor_input(op, i)
    if cnp.PyArray_TYPE(q) != cnp.NPY_UINT8:
        raise OperatorError(f"{_blob_label(op, i)} has dtype {q.dtype}; {op.type} takes the uint8 rows made by "
                            "FloatToFused8BitRowwiseQuantized")
    if cnp.PyArray_NDIM(q) < 1:
        raise OperatorError(f"{_blob_label(op, i)} must have at least one dimension, got a scalar")
    return q


cdef class _DequantizeOp(OperatorBase):
    """Fused8BitRowwiseQuantizedToFloat / Fused8BitRowwiseQuantizedToHalfFloat."""
    cdef bint half

    cdef int run_c(self) except -1:
        cdef cnp.ndarray q = _fused_input(self, 0)
        cdef int nd = cnp.PyArray_NDIM(q)
        shape = (<object>q).shape
        cdef Py_ssize_t C = shape[nd - 1]
        if C < 8:
            raise OperatorError(f"{_blob_label(self, 0)} has rows of {C} bytes; a fused 8-bit row ends in 8 bytes "
                                "of float32 scale and bias, so it needs at least 8")
        cdef Py_ssize_t rows = cnp.PyArray_SIZE(q) // C
        cdef cnp.ndarray out = output_array(<Blob>self.outputs[0], shape[:nd - 1] + (C - 8,),
                                            np.float16 if self.half else np.float32)
        with nogil:
            if self.half:
                _dequantize(<const uint8_t*>cnp.PyArray_DATA(q), rows, C - 8, <uint16_t*>cnp.PyArray_DATA(out))
            else:
                _dequantize(<const uint8_t*>cnp.PyArray_DATA(q), rows, C - 8, <float*>cnp.PyArray_DATA(out))
        return 0


cdef class Fused8BitRowwiseQuantizedToFloatOp(_DequantizeOp):
    def setup(self):
        self.half = False


cdef class Fused8BitRowwiseQuantizedToHalfFloatOp(_DequantizeOp):
    def setup(self):
        self.half = True


cdef class _SparseLengthsFused8BitOp(OperatorBase):
    """(DATA, [WEIGHTS,] INDICES, LENGTHS) -> OUTPUT over a fused 8-bit rowwise table."""
    cdef bint weighted, mean
    cdef Py_ssize_t i_idx, i_len

    cdef void _configure(self, bint weighted, bint mean):
        self.weighted = weighted
        self.mean = mean
        self.i_idx = 2 if weighted else 1
        self.i_len = self.i_idx + 1

    cdef int run_c(self) except -1:
        cdef cnp.ndarray data = _fused_input(self, 0)
        if cnp.PyArray_NDIM(data) != 2:
            raise OperatorError(f"{_blob_label(self, 0)} (DATA) must be a matrix of fused rows, got shape "
                                f"{(<object>data).shape}")
        cdef Py_ssize_t N = cnp.PyArray_DIMS(data)[0], C = cnp.PyArray_DIMS(data)[1]
        if C <= 8:
            raise OperatorError(f"{_blob_label(self, 0)} (DATA) has rows of {C} bytes; fused 8-bit rows hold the "
                                "values then 8 bytes of scale and bias, so they need more than 8")
        cdef cnp.ndarray idx = _vector_input(self, self.i_idx, "INDICES")
        cdef cnp.ndarray lengths = lengths_input(self, self.i_len)
        cdef Py_ssize_t n = cnp.PyArray_SIZE(idx), M = cnp.PyArray_DIMS(lengths)[0], D = C - 8
        cdef cnp.ndarray w = None
        cdef const float* wp = NULL
        if self.weighted:
            w = _weights_input(self, 1, cnp.NPY_FLOAT32, "float32")
            if cnp.PyArray_SIZE(w) != n:
                raise OperatorError(f"{_blob_label(self, 1)} has {cnp.PyArray_SIZE(w)} weights but "
                                    f"{_blob_label(self, self.i_idx)} has {n} indices; they must match")
            wp = <const float*>cnp.PyArray_DATA(w)
        check_lengths(self, self.i_len, lengths, n)
        _check_indices(self, self.i_idx, idx, N)
        cdef bint len64 = cnp.PyArray_TYPE(lengths) == cnp.NPY_INT64
        cdef cnp.ndarray out = output_array(<Blob>self.outputs[0], (M, D), np.float32)
        with nogil:
            _fused_pool(<const uint8_t*>cnp.PyArray_DATA(data), D, cnp.PyArray_DATA(idx),
                        cnp.PyArray_TYPE(idx) == cnp.NPY_INT64, n, cnp.PyArray_DATA(lengths), len64, M, wp,
                        self.mean, <float*>cnp.PyArray_DATA(out))
        return 0


# fused 8-bit pooling op type -> (weighted, mean)
_FUSED_KINDS = {
    "SparseLengthsSumFused8BitRowwise": (False, False),
    "SparseLengthsWeightedSumFused8BitRowwise": (True, False),
    "SparseLengthsMeanFused8BitRowwise": (False, True),
}


cdef class SparseLengthsFused8BitOp(_SparseLengthsFused8BitOp):
    """Every SparseLengths*Fused8BitRowwise op; its type picks weighting and mean at setup."""

    def setup(self):
        weighted, mean = _FUSED_KINDS[self.type]
        self._configure(weighted, mean)


# -- registration ----------------------------------------------------------------

KERNELS = {
    **{op_type: SparseLengthsPoolOp for op_type in _POOL_KINDS},
    **{op_type: SparseLengthsGradientOp for op_type in _GRADIENT_KINDS},
    "FloatToFused8BitRowwiseQuantized": FloatToFused8BitRowwiseQuantizedOp,
    "HalfFloatToFused8BitRowwiseQuantized": HalfFloatToFused8BitRowwiseQuantizedOp,
    "Fused8BitRowwiseQuantizedToFloat": Fused8BitRowwiseQuantizedToFloatOp,
    "Fused8BitRowwiseQuantizedToHalfFloat": Fused8BitRowwiseQuantizedToHalfFloatOp,
    **{op_type: SparseLengthsFused8BitOp for op_type in _FUSED_KINDS},
}


def register(registrar):
    from c2ops_sparse import _lookups_defs as defs
    for schema in defs.SCHEMAS:
        registrar.schema(schema)
    for op_type, cls in KERNELS.items():
        registrar.kernel(op_type, cls)
    for op_type, maker in defs.GRADIENTS.items():
        registrar.gradient(op_type, maker)
    for op_type in defs.NO_GRADIENT:
        registrar.no_gradient(op_type)
