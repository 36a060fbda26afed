/* Counter-based Bernoulli masks for masked surrogate gradients (MSG) on the CPU.
 *
 * Random stream: the uniform 32-bit number of element i (its position in memory) is half of the SplitMix64
 * output of word w = i / 2 (low half for even i, high half for odd i):
 *
 *     z = seed + (w + 1)·γ,  γ = 0x9E3779B97F4A7C15
 *     z = (z ^ (z >> 30))·0xBF58476D1CE4E5B9;  z = (z ^ (z >> 27))·0x94D049BB133111EB;  r[w] = z ^ (z >> 31)
 *
 * i.e. exactly the sequence of SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014; the constants of Vigna's reference implementation) started from state `seed`.
 * An element is dropped when u[i] < cut, with cut = round(p·2³²), so P(drop) = cut/2³² (p to within 2⁻³³).
 * Because the stream is a function of (seed, i), any element's bit can be recomputed: the mask never has to
 * be stored, and a second pass (fill) sees the same mask.
 *
 * Functions (all release the GIL; pointers come from torch tensors, checked by spikegrad/surrogates/masks.py):
 *   shift(h, out, n, is_double, threshold, seed, cut, threads)  out[i] = kept ? h[i] - threshold : +inf
 *   fill(g, n, is_double, value, seed, cut, threads)            g[i] = kept ? g[i] : value   (in place)
 *   keep(out_u8, n, seed, cut, threads)                         out[i] = kept ? 1 : 0
 *   bits(out_u32, n, seed)                                      out[i] = u[i]               (for tests)
 *
 * The 64-bit arithmetic is written with GCC/Clang vector extensions, eight words at a time, so that every
 * instruction set vectorises it (AVX-512DQ has a 64-bit multiply; AVX2 and SSE2 get it emulated); on x86-64
 * Linux the hot function is cloned for x86-64-v4, -v3 and the baseline and picked at load time.
 *
 * Threads: chunks of CHUNK elements are shared out by an OpenMP loop. Built with -fopenmp on Linux, the module
 * needs libgomp.so.1, and the loader binds it to the copy torch has already loaded, so the loop runs on torch's
 * own worker threads (setup.py). Threads of our own were slower than one thread on 2 cores (measured): torch's
 * workers keep spinning for a while after each parallel operation and took the second core from them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define WORDS 256          /* words of random bits per block */
#define BLOCK (2 * WORDS)  /* elements per block */
#define CHUNK (64 * BLOCK) /* elements per parallel work item */

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif
#define INLINE static inline __attribute__((always_inline))

typedef uint64_t u64x8 __attribute__((vector_size(64)));

static const uint64_t GAMMA = 0x9E3779B97F4A7C15ULL;

/* u[0 .. 2·WORDS) = the 32-bit halves of the words w0 .. w0 + WORDS - 1 (little-endian order) */
INLINE void block_bits(uint64_t seed, uint64_t w0, uint32_t *u) {
    const u64x8 lane = {1, 2, 3, 4, 5, 6, 7, 8};
    u64x8 c = (lane + w0) * GAMMA + seed; /* the states of words w0 .. w0 + 7 */
    for (int k = 0; k < WORDS; k += 8) {
        u64x8 z = c;
        c += 8 * GAMMA;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z = z ^ (z >> 31);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(u + 2 * k, &z, sizeof z);
#else
        for (int j = 0; j < 8; j++) {
            u[2 * (k + j)] = (uint32_t)z[j];
            u[2 * (k + j) + 1] = (uint32_t)(z[j] >> 32);
        }
#endif
    }
}

enum op { OP_SHIFT_F32, OP_SHIFT_F64, OP_FILL_F32, OP_FILL_F64, OP_KEEP };

/* One of the operations over elements [begin, end); begin is a multiple of BLOCK. */
CLONES static void run_range(enum op op, const void *src, void *dst, size_t begin, size_t end, double value,
                             uint64_t seed, uint32_t cut) {
    uint32_t u[BLOCK] __attribute__((aligned(64)));
    for (size_t b = begin; b < end; b += BLOCK) {
        const size_t m = end - b < BLOCK ? end - b : BLOCK;
        block_bits(seed, b / 2, u);
        switch (op) {
        case OP_SHIFT_F32: {
            const float *h = (const float *)src + b;
            float *out = (float *)dst + b;
            const float th = (float)value;
            for (size_t i = 0; i < m; i++) {
                const float x = h[i] - th; /* computed for every element, so that the loop vectorises */
                out[i] = u[i] >= cut ? x : INFINITY;
            }
            break;
        }
        case OP_SHIFT_F64: {
            const double *h = (const double *)src + b;
            double *out = (double *)dst + b;
            for (size_t i = 0; i < m; i++) {
                const double x = h[i] - value;
                out[i] = u[i] >= cut ? x : INFINITY;
            }
            break;
        }
        case OP_FILL_F32: {
            float *g = (float *)dst + b;
            const float v = (float)value;
            for (size_t i = 0; i < m; i++) g[i] = u[i] >= cut ? g[i] : v;
            break;
        }
        case OP_FILL_F64: {
            double *g = (double *)dst + b;
            for (size_t i = 0; i < m; i++) g[i] = u[i] >= cut ? g[i] : value;
            break;
        }
        case OP_KEEP: {
            uint8_t *out = (uint8_t *)dst + b;
            for (size_t i = 0; i < m; i++) out[i] = (uint8_t)(u[i] >= cut);
            break;
        }
        }
    }
}

/* The operation over elements [0, n), in chunks of CHUNK elements shared by up to `threads` OpenMP threads. */
static void run(enum op op, const void *src, void *dst, size_t n, double value, uint64_t seed, uint32_t cut,
                int threads) {
    const long chunks = (long)((n + CHUNK - 1) / CHUNK);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && chunks > 1)
#endif
    for (long c = 0; c < chunks; c++) {
        const size_t begin = (size_t)c * CHUNK, end = n - begin < CHUNK ? n : begin + CHUNK;
        run_range(op, src, dst, begin, end, value, seed, cut);
    }
}

static PyObject *py_shift(PyObject *self, PyObject *args) {
    unsigned long long src, dst, seed;
    Py_ssize_t n;
    int is_double, threads;
    double threshold;
    unsigned int cut;
    if (!PyArg_ParseTuple(args, "KKnpdKIi", &src, &dst, &n, &is_double, &threshold, &seed, &cut, &threads))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    run(is_double ? OP_SHIFT_F64 : OP_SHIFT_F32, (const void *)src, (void *)dst, (size_t)n, threshold, seed, cut,
        threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_fill(PyObject *self, PyObject *args) {
    unsigned long long dst, seed;
    Py_ssize_t n;
    int is_double, threads;
    double value;
    unsigned int cut;
    if (!PyArg_ParseTuple(args, "KnpdKIi", &dst, &n, &is_double, &value, &seed, &cut, &threads)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    run(is_double ? OP_FILL_F64 : OP_FILL_F32, NULL, (void *)dst, (size_t)n, value, seed, cut, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_keep(PyObject *self, PyObject *args) {
    unsigned long long dst, seed;
    Py_ssize_t n;
    int threads;
    unsigned int cut;
    if (!PyArg_ParseTuple(args, "KnKIi", &dst, &n, &seed, &cut, &threads)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    run(OP_KEEP, NULL, (void *)dst, (size_t)n, 0.0, seed, cut, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_bits(PyObject *self, PyObject *args) {
    unsigned long long dst, seed;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "KnK", &dst, &n, &seed)) return NULL;
    uint32_t *out = (uint32_t *)dst;
    uint32_t u[BLOCK] __attribute__((aligned(64)));
    for (size_t b = 0; b < (size_t)n; b += BLOCK) {
        size_t m = (size_t)n - b < BLOCK ? (size_t)n - b : BLOCK;
        block_bits(seed, b / 2, u);
        memcpy(out + b, u, m * sizeof(uint32_t));
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"shift", py_shift, METH_VARARGS, "out = kept ? h - threshold : +inf (float32/float64, in memory order)"},
    {"fill", py_fill, METH_VARARGS, "g = kept ? g : value, in place"},
    {"keep", py_keep, METH_VARARGS, "out (uint8) = kept ? 1 : 0"},
    {"bits", py_bits, METH_VARARGS, "out (uint32) = the uniform numbers of the stream"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_bernoulli",
                                    "Counter-based Bernoulli masks (SplitMix64 stream) for MSG on the CPU.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__bernoulli(void) { return PyModule_Create(&module); }
