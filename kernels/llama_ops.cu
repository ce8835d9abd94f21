// llm-bench's own CUDA kernels for the operations that dominate Llama decode and prefill at the
// Llama-3.2-1B shapes (hidden 2048, intermediate 8192, 32 query heads, 8 KV heads, head_dim 64).
//
// Compiled at run time by NVRTC (src/kernels.rs, `--gpu-architecture=sm_90`), so this file uses
// no #include at all: no cuda_fp16.h (f16 -> f32 is one `cvt.f32.f16` in inline PTX), no
// cooperative_groups (the cluster exchange of `attention_decode` is inline PTX), no math.h
// (-inf is spelled as its bit pattern). Everything used here (the vector types, __shfl_xor_sync,
// __byte_perm, __funnelshift_r, expf, sincos, ...) is built into NVRTC and nvcc alike;
// `nvcc -arch=sm_90 -ptx kernels/llama_ops.cu` compiles the same text.
//
// Every kernel is `extern "C"` (unmangled names for `module.load_function`). Shapes the fast
// paths do not cover fall back to a simple path that is correct for every shape the host allows;
// the host (src/kernels.rs) validates shapes and alignments before launching. Design notes and the
// version history with predictions and outcomes: kernels/NOTES.md.

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

#define FULL_MASK 0xffffffffu
#define NEG_INF (__int_as_float(0xff800000))

// ------------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------------

// IEEE half (as its 16 bits) to float: one hardware conversion, no cuda_fp16.h needed.
__device__ __forceinline__ float f16_bits_to_f32(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// Byte `sel & 3` of `biased` (a Q8_0 quant q plus 128, i.e. the int8 with its sign bit flipped) as
// an exact float q: the byte is placed in the mantissa of 2^23 (0x4B0000uu = 2^23 + q + 128) by one
// PRMT, then 2^23 + 128 is subtracted (exact). Two integer/FP instructions per quant instead of an
// I2F, whose throughput on sm_90 is a quarter of FP32's and would be close to the bound at 3 TB/s.
__device__ __forceinline__ float q8_byte(u32 biased, u32 sel) {
    return __int_as_float(__byte_perm(biased, 0x4B000000u, sel)) - 8388736.0f;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(FULL_MASK, v, off);
    return v;
}

// ------------------------------------------------------------------------------------------------
// Q8_0 matrix-vector product (decode): y[rows] = W[rows, cols] . x[cols]
// ------------------------------------------------------------------------------------------------
//
// W is GGUF Q8_0: each row is cols/32 blocks of 34 bytes (f16 scale d, then 32 int8 quants q;
// weight = d * q), rows back to back. The kernel is bandwidth-bound (one byte of W per
// multiply-add), and what limits it is how W is fetched: blocks are only 2-byte aligned, and the
// first two versions (NOTES.md), which read each block where it lies with 32-bit loads, issued
// about 7 times more memory requests per byte than a streaming copy and stalled at 0.48 and 0.77
// of copy bandwidth on the largest matrix. So the loads ignore the block format entirely:
//
// * Eight Q8_0 blocks (256 weights) are 272 bytes = 17 x 16 bytes, so whenever cols is a multiple
//   of 256 every row starts 16-byte aligned and the matrix is a sequence of 272-byte
//   "super-blocks". A warp's unit of work is a slab of 32 consecutive super-blocks (8704 bytes:
//   4 rows of 2048 columns, or 1 row of 8192), copied global -> shared memory with coalesced
//   16-byte `cp.async.cg` copies (each instruction moves 512 contiguous bytes, no registers, no
//   L1), two slabs in flight per warp (double-buffered), so every SM has ~140 KB of loads in flight.
// * Lane l then owns super-block l of the slab: it reads its 272 bytes from shared memory as 17
//   16-byte loads (the 272-byte lane stride puts the 8 lanes of each quarter-warp phase in 8
//   distinct bank groups: conflict-free), and unpacks the 8 blocks with compile-time byte offsets
//   (funnel/PRMT for the blocks whose quants start mid-word).
// * x sits in shared memory, loaded once per thread block (the grid is persistent), padded by 4
//   floats every 256 so the lanes' 16-byte reads of different super-block columns are also
//   conflict-free.
// * Quants become floats without I2F: PRMT puts the byte (sign-flipped) into the mantissa of 2^23
//   and one FADD removes the bias (q8_byte), then FMA with x, 4 independent chains per block.
// * A row's cols/256 lanes are summed with xor shuffles; no __syncthreads after the x load.
//
// Launch geometry (fast path: cols in {256, 512, 1024, 2048, 4096, 8192}, w and x 16-byte aligned):
//   block = (MV_WARPS * 32 = 256, 1, 1)
//   dynamic shared memory = q8_0_matvec_smem(cols) = cols/256 * 1040 + MV_WARPS * MV_STAGES * 8704
//     bytes (147 KB at cols 2048, 172 KB at 8192: set CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)
//   grid = (min(ceil(rows / (32 / (cols/256))), SMs * blocks_per_SM), 1, 1); slabs are dealt to
//     blocks first, then warps, so a small matrix still spreads over every SM.
// Any other cols (a multiple of 32), or a block/shared-memory size that does not match, takes the
// generic path: one warp per row, any block size that is a multiple of 32, e.g. block 256 and grid
// ceil(rows / 8), no dynamic shared memory.

#define MV_WARPS 8
#define MV_STAGES 2
#define MV_SLAB 8704  // 32 super-blocks of 272 bytes
#define MV_CHAIN_THREADS (MV_WARPS * 32 + 32)  // q8_0_matvec_chain: the computing warps + one controller

__device__ __forceinline__ u32 smem_addr(const void* p) {
    u32 r;
    asm("{\n\t.reg .u64 a;\n\tcvta.to.shared.u64 a, %1;\n\tcvt.u32.u64 %0, a;\n\t}" : "=r"(r) : "l"(p));
    return r;
}
// 16 bytes global -> shared, bypassing L1; `src_bytes` 0 writes zeros and reads nothing.
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, u32 src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }
__device__ __forceinline__ u32 dynamic_smem_size() {
    u32 r;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(r));
    return r;
}

// Block J (0..7) of a super-block held as 68 words: d at byte 34J, quants from byte 34J + 2.
template <int J>
__device__ __forceinline__ float q8_block_dot(const u32 (&wv)[68], const float* xs_blk) {
    constexpr int o = 34 * J;
    const u32 dw = wv[o / 4];
    const u16 dbits = (o % 4) ? (u16)(dw >> 16) : (u16)(dw & 0xffff);
    constexpr int qi = (o + 2) / 4, qs = (o + 2) % 4;  // quants start 0 or 2 bytes into word qi
    float s[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const u32 q = (qs ? __byte_perm(wv[qi + i], wv[qi + i + 1], 0x5432) : wv[qi + i]) ^ 0x80808080u;
        const float4 xv = reinterpret_cast<const float4*>(xs_blk)[i];
        float& a = s[i & 3];
        a = fmaf(q8_byte(q, 0x7540), xv.x, a);
        a = fmaf(q8_byte(q, 0x7541), xv.y, a);
        a = fmaf(q8_byte(q, 0x7542), xv.z, a);
        a = fmaf(q8_byte(q, 0x7543), xv.w, a);
    }
    return f16_bits_to_f32(dbits) * ((s[0] + s[1]) + (s[2] + s[3]));
}

template <int J>
__device__ __forceinline__ float q8_superblock_dot(const u32 (&wv)[68], const float* xs_seg) {
    if constexpr (J < 8) {
        return q8_block_dot<J>(wv, xs_seg + 32 * J) + q8_superblock_dot<J + 1>(wv, xs_seg);
    } else {
        return 0.f;
    }
}

// Programmatic dependent launch (sm_90): let the next kernel on the stream be scheduled now (its
// blocks still wait for ours before reading what we write), and wait for the previous kernel to
// finish and flush its writes. Both are no-ops unless the launch set the PDL attribute.
__device__ __forceinline__ void grid_dependents_launch() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
__device__ __forceinline__ void grid_dependency_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

// Copy slab `slab` of a Q8_0 matrix of `total` bytes to shared memory at `dst` (no commit): 17
// coalesced 16-byte cp.async per lane; past the end (a partial last slab) zeros are written.
__device__ __forceinline__ void mv_issue_slab(const u8* __restrict__ w, size_t total, int slab, u32 dst, int lane) {
    const size_t start = (size_t)slab * MV_SLAB;
#pragma unroll
    for (int c = lane; c < MV_SLAB / 16; c += 32) {
        const size_t off = start + 16 * (size_t)c;
        const bool ok = off < total;  // the last slab of a matrix may be partial
        cp_async16(dst + 16 * c, ok ? (const void*)(w + off) : (const void*)w, ok ? 16u : 0u);
    }
}

// x (cols floats, cols <= 8192) -> shared memory, padded (260 floats per 256 columns), all loads
// in flight at once; every thread of the 256-thread block takes part. `L2_ONLY`: load through L2
// only (ld.global.cg), for an x written by other blocks of the same kernel, which this SM's L1
// may still hold an older copy of.
template <bool L2_ONLY>
__device__ __forceinline__ void mv_stage_x(const float* __restrict__ x, int cols, float* xs) {
    const int n4 = cols >> 2;
    float4 v[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) {
        const int i = threadIdx.x + k * MV_WARPS * 32;
        if (i < n4) v[k] = L2_ONLY ? __ldcg(reinterpret_cast<const float4*>(x) + i) : reinterpret_cast<const float4*>(x)[i];
    }
#pragma unroll
    for (int k = 0; k < 8; ++k) {
        const int i = threadIdx.x + k * MV_WARPS * 32;
        if (i < n4) *reinterpret_cast<float4*>(xs + (i >> 6) * 260 + ((4 * i) & 255)) = v[k];
    }
}

// Lane's super-block (272 bytes at lane * 272 of the slab in shared memory) into registers.
__device__ __forceinline__ void mv_load_superblock(const u8* slab, int lane, u32 (&wv)[68]) {
    const uint4* sb = reinterpret_cast<const uint4*>(slab + lane * 272);
#pragma unroll
    for (int i = 0; i < 17; ++i) {
        const uint4 u = sb[i];
        wv[4 * i] = u.x;
        wv[4 * i + 1] = u.y;
        wv[4 * i + 2] = u.z;
        wv[4 * i + 3] = u.w;
    }
}

// The super-block's dot product with x, summed over the S lanes of its row (xor shuffles): the
// row's result on every lane of the row.
__device__ __forceinline__ float mv_row_sum(const u32 (&wv)[68], const float* xs, int S, int lane) {
    float v = q8_superblock_dot<0>(wv, xs + (lane % S) * 260);
    for (int off = S >> 1; off > 0; off >>= 1) v += __shfl_xor_sync(FULL_MASK, v, off);
    return v;
}

__device__ __forceinline__ void q8_0_matvec_slabs(const u8* __restrict__ w, const float* __restrict__ x,
                                                  float* __restrict__ y, int rows, int cols, u8* dsm) {
    const int S = cols >> 8, P = 32 / S;  // super-blocks per row, rows per slab
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float* xs = reinterpret_cast<float*>(dsm);
    u8* stages = dsm + S * 1040 + warp * MV_STAGES * MV_SLAB;
    const size_t total = (size_t)rows * (size_t)(cols >> 5) * 34;
    const int nslabs = (rows + P - 1) / P;
    const int first = blockIdx.x + gridDim.x * warp, step = gridDim.x * MV_WARPS;
    auto issue = [&](int slab, int buf) {
        if (slab < nslabs) mv_issue_slab(w, total, slab, smem_addr(stages + buf * MV_SLAB), lane);
        cp_async_commit();  // an empty group past the end keeps the wait counts uniform
    };
#pragma unroll
    for (int k = 0; k < MV_STAGES - 1; ++k) issue(first + k * step, k);
    // Launched with programmatic dependent launch, this kernel may be running while the kernel
    // before it on the stream (which writes x) drains: the weight copies above do not depend on
    // it, x does. Without the launch attribute this is a no-op.
    grid_dependency_wait();
    mv_stage_x<false>(x, cols, xs);
    __syncthreads();
    int buf = 0;
    for (int slab = first; slab < nslabs; slab += step) {
        issue(slab + (MV_STAGES - 1) * step, (buf + MV_STAGES - 1) % MV_STAGES);
        cp_async_wait<MV_STAGES - 1>();  // this slab's copies (issued one iteration earlier) are done
        __syncwarp();
        u32 wv[68];
        mv_load_superblock(stages + buf * MV_SLAB, lane, wv);
        __syncwarp();  // every lane has its words: the buffer may be refilled
        const float v = mv_row_sum(wv, xs, S, lane);
        const int row = slab * P + lane / S;
        if (lane % S == 0 && row < rows) y[row] = v;
        buf = (buf + 1) % MV_STAGES;
    }
    cp_async_wait<0>();
}

// Any cols that is a multiple of 32: one warp per row, lane-strided blocks, 16-bit loads.
__device__ __forceinline__ void q8_0_matvec_generic(const u8* __restrict__ w, const float* __restrict__ x,
                                                    float* __restrict__ y, int rows, int cols) {
    grid_dependency_wait();
    const int lane = threadIdx.x & 31;
    const int nwarps = blockDim.x >> 5;
    const int nb = cols >> 5;
    const size_t row_bytes = (size_t)nb * 34;
    for (int row = blockIdx.x * nwarps + (threadIdx.x >> 5); row < rows; row += gridDim.x * nwarps) {
        const u8* rp = w + (size_t)row * row_bytes;
        float acc = 0.f;
        for (int b = lane; b < nb; b += 32) {
            const u8* bp = rp + 34 * b;
            const float d = f16_bits_to_f32(*reinterpret_cast<const u16*>(bp));
            const u16* qs = reinterpret_cast<const u16*>(bp + 2);
            const float* xb = x + 32 * b;
            float s = 0.f;
#pragma unroll
            for (int j = 0; j < 16; ++j) {
                const u16 pair = qs[j];
                s = fmaf((float)(signed char)(pair & 0xff), xb[2 * j], s);
                s = fmaf((float)(signed char)(pair >> 8), xb[2 * j + 1], s);
            }
            acc = fmaf(d, s, acc);
        }
        acc = warp_sum(acc);
        if (lane == 0) y[row] = acc;
    }
}

extern "C" __global__ void __launch_bounds__(MV_WARPS * 32)
q8_0_matvec(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols) {
    extern __shared__ __align__(16) u8 mv_dsm[];
    grid_dependents_launch();
    const int S = cols >> 8;
    const bool shape_ok = (cols & 255) == 0 && S >= 1 && S <= 32 && (S & (S - 1)) == 0;
    const bool fast = shape_ok && blockDim.x == MV_WARPS * 32 &&
                      dynamic_smem_size() >= (u32)(S * 1040 + MV_WARPS * MV_STAGES * MV_SLAB) &&
                      (((size_t)w | (size_t)x) & 15) == 0;
    if (fast) {
        q8_0_matvec_slabs(w, x, y, rows, cols, mv_dsm);
    } else {
        q8_0_matvec_generic(w, x, y, rows, cols);
    }
}

// ------------------------------------------------------------------------------------------------
// A chain of Q8_0 matrix-vector products in one persistent kernel (a decode step's matvecs)
// ------------------------------------------------------------------------------------------------
//
// One launch per decode step instead of one per matrix. A single launch of a 1B layer matrix
// cannot reach copy bandwidth (NOTES.md: even a pure streaming read of 4.5 MB gets 0.35 of it on
// the H200): the first wave ramps up, the last drains, and the next launch starts from nothing.
// Here every block stays resident for the whole chain and streams weights continuously:
//
// * Task t is y_t = W_t . x_t, where x_t is written by an earlier task; a task may only read its x
//   once every block has finished the task before it (one counter per task in `done`, raised by
//   each block with a release add after a block barrier, polled with acquire loads; both done by
//   a controller warp that copies and computes nothing, so no fence waits on copies in flight).
// * Weights never depend on x, so each warp's copy pipeline runs across task boundaries: the same
//   slab order as `q8_0_matvec_slabs` (slabs dealt to blocks, then warps), per task in turn, with
//   MV_STAGES slabs always in flight. While a block waits for the others to finish task t, its
//   warps' copies of task t+1's first slabs (or t+2's, for a warp with no slab in t+1) are already
//   on their way: the wait overlaps the transfer instead of preceding it.
// * x is staged with L2-only loads (another SM wrote it; this SM's L1 may hold a stale copy).
// * The last block to finish the last task zeroes `done` for the next launch.
//
// Launch: block (MV_CHAIN_THREADS: MV_WARPS computing warps and one controller warp that waits
// and signals), dynamic shared memory x_smem_bytes + MV_WARPS * MV_STAGES *
// MV_SLAB where x_smem_bytes = max cols / 256 * 1040; every block resident at once (cooperative
// launch: grid = SMs x blocks per SM), `done` zeroed before the first launch. Every task is a
// fast-path shape (cols 256 x a power of two up to 8192, w and x 16-byte aligned), checked by the host.

struct MatvecTask {
    const u8* w;
    const float* x;
    float* y;
    int rows;
    int cols;
};

__device__ __forceinline__ u32 ld_acquire_gpu(const u32* p) {
    u32 v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void red_release_gpu_add(u32* p, u32 v) {
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ int mv_task_slabs(const MatvecTask& t) {
    const int P = 32 / (t.cols >> 8);
    return (t.rows + P - 1) / P;
}

extern "C" __global__ void __launch_bounds__(MV_CHAIN_THREADS)
q8_0_matvec_chain(const MatvecTask* __restrict__ tasks, int ntasks, int x_smem_bytes, u32* __restrict__ done) {
    extern __shared__ __align__(16) u8 mv_dsm[];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    // Warps 0..MV_WARPS-1 copy and compute; warp MV_WARPS only waits and signals, so the thread
    // that fences and signals has no copies of its own in flight (v7 signalled from a computing
    // thread after a fence in every thread: 4 us per task, NOTES.md).
    const bool controller = warp == MV_WARPS;
    const int first = blockIdx.x + gridDim.x * warp, step = gridDim.x * MV_WARPS;
    float* xs = reinterpret_cast<float*>(mv_dsm);
    u8* stages = mv_dsm + x_smem_bytes + warp * MV_STAGES * MV_SLAB;

    // The copy cursor: this warp's next slab to copy, as (task it, slab is), across tasks.
    int it = 0, is = first;
    auto skip_empty = [&]() {
        while (it < ntasks && is >= mv_task_slabs(tasks[it])) {
            ++it;
            is = first;
        }
    };
    auto issue_next = [&](int buf) {
        if (it < ntasks) {
            const MatvecTask& T = tasks[it];
            mv_issue_slab(T.w, (size_t)T.rows * (size_t)(T.cols >> 5) * 34, is, smem_addr(stages + buf * MV_SLAB), lane);
            is += step;
            skip_empty();
        }
        cp_async_commit();  // an empty group past the end keeps the wait counts uniform
    };
    if (!controller) {
        skip_empty();
#pragma unroll
        for (int b = 0; b < MV_STAGES; ++b) issue_next(b);
    }

    int buf = 0;
    for (int t = 0; t < ntasks; ++t) {
        const MatvecTask T = tasks[t];
        const int S = T.cols >> 8, P = 32 / S, nslabs = mv_task_slabs(T);
        if (t > 0) {
            if (controller && lane == 0) {
                while (ld_acquire_gpu(done + t - 1) < gridDim.x) {
                }
            }
            __syncthreads();
        }
        if (!controller) mv_stage_x<true>(T.x, T.cols, xs);
        __syncthreads();
        if (!controller) {
            for (int slab = first; slab < nslabs; slab += step) {
                cp_async_wait<MV_STAGES - 1>();  // the oldest of this warp's copies: this slab
                __syncwarp();
                u32 wv[68];
                mv_load_superblock(stages + buf * MV_SLAB, lane, wv);
                __syncwarp();     // every lane has its words: the buffer may be refilled
                issue_next(buf);  // before the arithmetic, so the copy overlaps it
                const float v = mv_row_sum(wv, xs, S, lane);
                const int row = slab * P + lane / S;
                if (lane % S == 0 && row < T.rows) T.y[row] = v;
                buf = (buf + 1) % MV_STAGES;
            }
        }
        __syncthreads();  // every warp is done with task t: its y written, xs free
        if (controller && lane == 0) {
            // Release at GPU scope after the barrier: the block's y writes before the count.
            if (t + 1 < ntasks) {
                red_release_gpu_add(done + t, 1);
            } else if (atomicAdd(done + t, 1) == gridDim.x - 1) {
                // Every block has passed every wait: reset for the next launch.
                for (int i = 0; i < ntasks; ++i) done[i] = 0;
            }
        }
    }
    if (!controller) cp_async_wait<0>();
}

// ------------------------------------------------------------------------------------------------
// Q8_0 matrix-matrix product (prefill, batches): Y[n, rows] = X[n, cols] . W[rows, cols]^T
// ------------------------------------------------------------------------------------------------
//
// A classic shared-memory tiled SGEMM with the weights dequantized on their way into shared
// memory: each block computes a TM x TN tile of Y (TM weight rows x TN tokens) and walks K one
// Q8_0 block (32 columns) at a time. Per step it dequantizes TM blocks of W into Ws[32][TM] (k-major)
// and copies X[TN, 32] transposed into Xs[32][TN]; each thread then accumulates an 8 x 4
// micro-tile (8 weight rows x 4 tokens) with 3 shared 16-byte loads per 32 FMAs. Every dequantized
// weight is reused by TN tokens and every x by TM rows. The next step's global loads are issued into
// registers before the current step's arithmetic (register double buffering). Accumulation is f32
// throughout, in the order k = 0, 1, 2, ... per output, so the result is reproducible.
//
// Tile sizes, chosen by the block size (the host picks the largest that still fills the GPU):
//   block 256 -> TM 128, TN 64;   block 128 -> TM 64, TN 64;   block 64 -> TM 64, TN 32.
// Launch geometry: grid = (ceil(rows / TM), ceil(n / TN), 1). cols % 32 == 0, X and Y row-major.

#define MM_BK 32

template <int TM, int TN, int THREADS>
__device__ __forceinline__ void q8_0_matmul_tile(const u8* __restrict__ w, const float* __restrict__ x,
                                                 float* __restrict__ y, int rows, int cols, int n, float* smem) {
    constexpr int TXN = TM / 8;               // threads along rows (each 8 rows: 4 + 4, TM/2 apart)
    constexpr int WS = TM + 4, XS = TN + 4;   // padded strides (floats), multiples of 4
    constexpr int NW = (2 * TM) / THREADS;    // half-blocks of W per thread per step
    constexpr int NX = (TN * 8) / THREADS;    // float4 of X per thread per step
    float* Ws = smem;
    float* Xs = smem + MM_BK * WS;
    const int t = threadIdx.x, tx = t % TXN, ty = t / TXN;
    const int m0 = blockIdx.x * TM, n0 = blockIdx.y * TN;
    const int nb = cols >> 5;
    const size_t row_bytes = (size_t)nb * 34;

    float acc[8][4];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;

    // Registers holding the next step's global data.
    u32 wq[NW][5];
    u16 wd[NW];
    float4 xr[NX];

    auto load = [&](int kb) {
#pragma unroll
        for (int i = 0; i < NW; ++i) {
            const int item = t + i * THREADS, m = item >> 1, h = item & 1;
            const int row = m0 + m;
            if (row < rows) {
                const u8* bp = w + (size_t)row * row_bytes + (size_t)kb * 34;
                wd[i] = *reinterpret_cast<const u16*>(bp);
                const size_t a = (size_t)(bp + 2 + 16 * h);
                const u32* p = reinterpret_cast<const u32*>(a & ~(size_t)3);
                const u32 s = (u32)(a & 3);
                wq[i][0] = p[0];
                wq[i][1] = p[1];
                wq[i][2] = p[2];
                wq[i][3] = p[3];
                wq[i][4] = s ? p[4] : 0u;  // the fifth word only when the quants start mid-word
            } else {
                wd[i] = 0;
#pragma unroll
                for (int j = 0; j < 5; ++j) wq[i][j] = 0u;
            }
        }
#pragma unroll
        for (int i = 0; i < NX; ++i) {
            const int idx = t + i * THREADS, tok = idx % TN, c4 = idx / TN;
            const int tn = n0 + tok;
            xr[i] = tn < n ? *reinterpret_cast<const float4*>(x + (size_t)tn * cols + kb * 32 + 4 * c4)
                           : make_float4(0.f, 0.f, 0.f, 0.f);
        }
    };

    auto store = [&](int kb) {
#pragma unroll
        for (int i = 0; i < NW; ++i) {
            const int item = t + i * THREADS, m = item >> 1, h = item & 1;
            const int row = m0 + m;
            // Same address arithmetic as `load`, for the funnel shift (0 or 16 bits).
            const size_t a = (size_t)(w + (size_t)(row < rows ? row : 0) * row_bytes + (size_t)kb * 34 + 2 + 16 * h);
            const u32 sh = (u32)(a & 3) * 8u;
            const float d = f16_bits_to_f32(wd[i]);
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const u32 q = __funnelshift_r(wq[i][j], wq[i][j + 1], sh) ^ 0x80808080u;
                float* dst = Ws + (16 * h + 4 * j) * WS + m;
                dst[0 * WS] = d * q8_byte(q, 0x7540);
                dst[1 * WS] = d * q8_byte(q, 0x7541);
                dst[2 * WS] = d * q8_byte(q, 0x7542);
                dst[3 * WS] = d * q8_byte(q, 0x7543);
            }
        }
#pragma unroll
        for (int i = 0; i < NX; ++i) {
            const int idx = t + i * THREADS, tok = idx % TN, c4 = idx / TN;
            Xs[(4 * c4 + 0) * XS + tok] = xr[i].x;
            Xs[(4 * c4 + 1) * XS + tok] = xr[i].y;
            Xs[(4 * c4 + 2) * XS + tok] = xr[i].z;
            Xs[(4 * c4 + 3) * XS + tok] = xr[i].w;
        }
    };

    load(0);
    for (int kb = 0; kb < nb; ++kb) {
        store(kb);
        __syncthreads();
        if (kb + 1 < nb) load(kb + 1);
#pragma unroll
        for (int kk = 0; kk < MM_BK; ++kk) {
            const float4 a0 = *reinterpret_cast<const float4*>(Ws + kk * WS + tx * 4);
            const float4 a1 = *reinterpret_cast<const float4*>(Ws + kk * WS + TM / 2 + tx * 4);
            const float4 b = *reinterpret_cast<const float4*>(Xs + kk * XS + ty * 4);
            const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            const float bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }

#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int tn = n0 + ty * 4 + j;
        if (tn >= n) continue;
        float* yr = y + (size_t)tn * rows;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int r = m0 + half * (TM / 2) + tx * 4;
            if (r + 3 < rows && (rows & 3) == 0) {
                *reinterpret_cast<float4*>(yr + r) =
                    make_float4(acc[half * 4 + 0][j], acc[half * 4 + 1][j], acc[half * 4 + 2][j], acc[half * 4 + 3][j]);
            } else {
#pragma unroll
                for (int i = 0; i < 4; ++i)
                    if (r + i < rows) yr[r + i] = acc[half * 4 + i][j];
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(256)
q8_0_matmul(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int n) {
    __shared__ __align__(16) float smem[MM_BK * (128 + 4) + MM_BK * (64 + 4)];
    switch (blockDim.x) {
        case 256: q8_0_matmul_tile<128, 64, 256>(w, x, y, rows, cols, n, smem); break;
        case 128: q8_0_matmul_tile<64, 64, 128>(w, x, y, rows, cols, n, smem); break;
        case 64: q8_0_matmul_tile<64, 32, 64>(w, x, y, rows, cols, n, smem); break;
        default: break;  // the host never launches another size; the poisoned output shows it
    }
}

// ------------------------------------------------------------------------------------------------
// RMSNorm: y[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * weight
// ------------------------------------------------------------------------------------------------
// Launch geometry: grid = (n, 1, 1) (one block per row), block = (256, 1, 1) (any multiple of 32
// up to 1024). Sum of squares in f32, per-thread then warp shuffles then across warps.

extern "C" __global__ void __launch_bounds__(1024)
rms_norm(const float* __restrict__ x, const float* __restrict__ weight, float* __restrict__ y, int n, int dim, float eps) {
    __shared__ float part[32];
    __shared__ float inv_s;
    const int row = blockIdx.x;
    if (row >= n) return;
    const float* xr = x + (size_t)row * dim;
    float* yr = y + (size_t)row * dim;
    const bool vec = (dim & 3) == 0 && ((size_t)xr & 15) == 0 && ((size_t)yr & 15) == 0 && ((size_t)weight & 15) == 0;
    float ss = 0.f;
    if (vec) {
        for (int i = threadIdx.x; i < dim / 4; i += blockDim.x) {
            const float4 v = reinterpret_cast<const float4*>(xr)[i];
            ss = fmaf(v.x, v.x, ss);
            ss = fmaf(v.y, v.y, ss);
            ss = fmaf(v.z, v.z, ss);
            ss = fmaf(v.w, v.w, ss);
        }
    } else {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
    }
    ss = warp_sum(ss);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) part[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        float v = lane < (int)(blockDim.x >> 5) ? part[lane] : 0.f;
        v = warp_sum(v);
        if (lane == 0) inv_s = 1.0f / sqrtf(v / (float)dim + eps);
    }
    __syncthreads();
    const float inv = inv_s;
    if (vec) {
        for (int i = threadIdx.x; i < dim / 4; i += blockDim.x) {
            const float4 v = reinterpret_cast<const float4*>(xr)[i];
            const float4 g = reinterpret_cast<const float4*>(weight)[i];
            reinterpret_cast<float4*>(yr)[i] = make_float4(v.x * inv * g.x, v.y * inv * g.y, v.z * inv * g.z, v.w * inv * g.w);
        }
    } else {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * inv * weight[i];
    }
}

// ------------------------------------------------------------------------------------------------
// RoPE, in place, GGUF Llama layout: pairs (2i, 2i+1) of each head rotated by pos * theta^(-2i/hd)
// ------------------------------------------------------------------------------------------------
// q: [n_tokens, n_heads, head_dim], k: [n_tokens, n_kv_heads, head_dim], positions: [n_tokens].
// The angle is computed in double (pos up to 8K times a frequency near 1: in f32 the angle would
// be off by up to half an ulp of 8192, 5e-4 rad) and its sin/cos rounded once to f32. Each thread
// owns one pair index i and computes its sin/cos once, then rotates that pair in every head.
// Launch geometry: grid = (n_tokens, 1, 1), block = (256, 1, 1) (a multiple of head_dim / 2).

extern "C" __global__ void __launch_bounds__(1024)
rope(float* __restrict__ q, float* __restrict__ k, const int* __restrict__ positions, int n_tokens, int n_heads,
     int n_kv_heads, int head_dim, float theta) {
    const int tok = blockIdx.x;
    if (tok >= n_tokens) return;
    const int half = head_dim >> 1;
    const int i = threadIdx.x % half;
    const int slot = threadIdx.x / half, slots = blockDim.x / half;
    if (slot >= slots) return;  // threads beyond a whole number of pair-rows have no work
    const double inv_freq = exp(-(2.0 * (double)i / (double)head_dim) * log((double)theta));
    double sd, cd;
    sincos((double)positions[tok] * inv_freq, &sd, &cd);
    const float s = (float)sd, c = (float)cd;
    for (int h = slot; h < n_heads + n_kv_heads; h += slots) {
        float* base = h < n_heads ? q + ((size_t)tok * n_heads + h) * head_dim
                                  : k + ((size_t)tok * n_kv_heads + (h - n_heads)) * head_dim;
        float2* p = reinterpret_cast<float2*>(base) + i;  // head_dim even, buffers 8-byte aligned
        const float2 v = *p;
        *p = make_float2(v.x * c - v.y * s, v.x * s + v.y * c);
    }
}

// ------------------------------------------------------------------------------------------------
// SwiGLU: out = silu(gate) * up, silu(g) = g / (1 + exp(-g))
// ------------------------------------------------------------------------------------------------
// Launch geometry: block = (256, 1, 1), grid = (ceil(n / 1024), 1, 1) or fewer (grid-stride).

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

extern "C" __global__ void __launch_bounds__(1024)
swiglu(const float* __restrict__ gate, const float* __restrict__ up, float* __restrict__ out, int n) {
    const int stride = gridDim.x * blockDim.x;
    const bool vec = (n & 3) == 0 && (((size_t)gate | (size_t)up | (size_t)out) & 15) == 0;
    if (vec) {
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n / 4; i += stride) {
            const float4 g = reinterpret_cast<const float4*>(gate)[i];
            const float4 u = reinterpret_cast<const float4*>(up)[i];
            reinterpret_cast<float4*>(out)[i] =
                make_float4(silu_mul(g.x, u.x), silu_mul(g.y, u.y), silu_mul(g.z, u.z), silu_mul(g.w, u.w));
        }
    } else {
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = silu_mul(gate[i], up[i]);
    }
}

// ------------------------------------------------------------------------------------------------
// Decode attention: one new token (q: [n_heads, head_dim]) over seq_len cached positions
// (k_cache, v_cache: [seq_len, n_kv_heads, head_dim] f32), grouped-query (n_heads / n_kv_heads
// query heads per KV head), out: [n_heads, head_dim].  out_h = softmax(scale * q_h . K^T) . V
// ------------------------------------------------------------------------------------------------
//
// Split-K ("flash decoding") inside one launch, with a Hopper thread-block cluster doing the
// combine so that no workspace is needed: the 8 blocks of a cluster share one KV head, each takes
// 1/8 of the positions, and each serves all G query heads of the group, so K and V are read once
// (not G times). Within a block, lanes work in groups of 8 (8 lanes x head_dim/8 dims = one
// position), 32 groups per block; each group keeps an online softmax (running max m, sum l,
// weighted sum acc) per query head. Loads of ATT_UNROLL_* positions per group are issued before
// their arithmetic, and the running state is rescaled once per batch of positions. At the end the groups are merged with shuffles, the warps through shared memory,
// and the 8 blocks through distributed shared memory (mapa + ld.shared::cluster), by block 0.
//
// Launch geometry: grid = (8, n_kv_heads, 1), block = (256, 1, 1); the kernel is compiled with
// __cluster_dims__(8, 1, 1) so a plain launch forms the clusters. Supported: head_dim 64 or 128,
// 1 <= n_heads / n_kv_heads <= 4; anything else writes NaN (the host refuses it first).

#define ATT_SPLITS 8
#define ATT_THREADS 256
#define ATT_UNROLL_64 8   // positions per group in flight, head_dim 64 (H200: 8 beat 4 by 16% at 8K)
#define ATT_UNROLL_128 2  // head_dim 128: twice the registers per position
#define ATT_MAX_G 4
#define ATT_MAX_HD 128

__device__ __forceinline__ u32 cluster_ctarank() {
    u32 r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return r;
}

__device__ __forceinline__ void cluster_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

// Read a float from the shared memory of block `rank` of this cluster, at the address of `p` in ours.
__device__ __forceinline__ float ld_cluster_f32(const float* p, u32 rank) {
    u32 local, remote;
    asm volatile("{\n\t.reg .u64 a;\n\tcvta.to.shared.u64 a, %1;\n\tcvt.u32.u64 %0, a;\n\t}" : "=r"(local) : "l"(p));
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(rank));
    float v;
    asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(remote) : "memory");
    return v;
}

// Merge the softmax state (m2, l2) into (m, l); returns the factors for the old and new accumulators.
__device__ __forceinline__ void softmax_merge(float& m, float& l, float m2, float l2, float& a, float& b) {
    const float M = fmaxf(m, m2);
    a = m == NEG_INF ? 0.f : expf(m - M);
    b = m2 == NEG_INF ? 0.f : expf(m2 - M);
    l = l * a + l2 * b;
    m = M;
}

// Shared floats attention_decode_impl needs for THREADS threads.
#define ATT_SMEM_FLOATS(THREADS) (2 * ((THREADS) / 32) * ATT_MAX_G + ((THREADS) / 32) * ATT_MAX_G * ATT_MAX_HD + 2 * ATT_MAX_G + ATT_MAX_G * ATT_MAX_HD)

template <int HD, int G, int THREADS, int UNROLL>
__device__ __forceinline__ void attention_decode_impl(const float* __restrict__ q, const float* __restrict__ k_cache,
                                                      const float* __restrict__ v_cache, float* __restrict__ out,
                                                      int n_kv_heads, int seq_len, float scale, float* smem) {
    constexpr int DPL = HD / 8;  // dims per lane
    constexpr int NV = DPL / 4;  // float4 per lane per position
    constexpr int NWARPS = THREADS / 32;
    constexpr int NGROUPS = THREADS / 8;  // lane groups (one position each) per block
    const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
    const int gl = lane & 7;                 // lane within its group of 8
    const int gid = warp * 4 + (lane >> 3);  // group index in the block
    const int kvh = blockIdx.y;
    const u32 split = cluster_ctarank();
    const int per = (seq_len + ATT_SPLITS - 1) / ATT_SPLITS;
    const int start = min(seq_len, (int)split * per), end = min(seq_len, start + per);

    // Shared memory: per-warp states, then the block's merged state (read by block 0 of the cluster).
    float* w_m = smem;                                       // [NWARPS][G]
    float* w_l = w_m + NWARPS * ATT_MAX_G;                   // [NWARPS][G]
    float* w_acc = w_l + NWARPS * ATT_MAX_G;                 // [NWARPS][G][HD]
    float* c_m = w_acc + NWARPS * ATT_MAX_G * ATT_MAX_HD;    // [G]
    float* c_l = c_m + ATT_MAX_G;                            // [G]
    float* c_acc = c_l + ATT_MAX_G;                          // [G][HD]

    float qr[G][DPL];
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
        for (int j = 0; j < NV; ++j) {
            const float4 v = reinterpret_cast<const float4*>(q + (size_t)(kvh * G + g) * HD + gl * DPL)[j];
            qr[g][4 * j] = v.x;
            qr[g][4 * j + 1] = v.y;
            qr[g][4 * j + 2] = v.z;
            qr[g][4 * j + 3] = v.w;
        }
    float m[G], l[G], acc[G][DPL];
#pragma unroll
    for (int g = 0; g < G; ++g) {
        m[g] = NEG_INF;
        l[g] = 0.f;
#pragma unroll
        for (int d = 0; d < DPL; ++d) acc[g][d] = 0.f;
    }

    const size_t pos_stride = (size_t)n_kv_heads * HD;
    const float* kbase = k_cache + (size_t)kvh * HD + gl * DPL;
    const float* vbase = v_cache + (size_t)kvh * HD + gl * DPL;
    // Uniform trip count for the whole block: the shuffles below always see all 32 lanes.
    for (int base = start; base < end; base += NGROUPS * UNROLL) {
        float4 kr[UNROLL][NV], vr[UNROLL][NV];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const int p = base + u * NGROUPS + gid;
#pragma unroll
            for (int j = 0; j < NV; ++j) {
                if (p < end) {
                    kr[u][j] = reinterpret_cast<const float4*>(kbase + (size_t)p * pos_stride)[j];
                    vr[u][j] = reinterpret_cast<const float4*>(vbase + (size_t)p * pos_stride)[j];
                } else {
                    kr[u][j] = make_float4(0.f, 0.f, 0.f, 0.f);
                    vr[u][j] = kr[u][j];
                }
            }
        }
#pragma unroll
        for (int g = 0; g < G; ++g) {
            // Scores of this group's UNROLL positions, then one rescale of the running state for
            // all of them (1 + 1/UNROLL exponentials per position instead of 2).
            float sc[UNROLL];
            float mb = m[g];
#pragma unroll
            for (int u = 0; u < UNROLL; ++u) {
                float s = 0.f;
#pragma unroll
                for (int j = 0; j < NV; ++j) {
                    s = fmaf(qr[g][4 * j], kr[u][j].x, s);
                    s = fmaf(qr[g][4 * j + 1], kr[u][j].y, s);
                    s = fmaf(qr[g][4 * j + 2], kr[u][j].z, s);
                    s = fmaf(qr[g][4 * j + 3], kr[u][j].w, s);
                }
                s += __shfl_xor_sync(FULL_MASK, s, 1);
                s += __shfl_xor_sync(FULL_MASK, s, 2);
                s += __shfl_xor_sync(FULL_MASK, s, 4);
                sc[u] = base + u * NGROUPS + gid < end ? s * scale : NEG_INF;
                mb = fmaxf(mb, sc[u]);
            }
            if (mb != NEG_INF) {  // at least one valid position so far
                const float corr = expf(m[g] - mb);  // m = -inf at first: exp(-inf) = 0
                float lsum = l[g] * corr;
#pragma unroll
                for (int d = 0; d < DPL; ++d) acc[g][d] *= corr;
#pragma unroll
                for (int u = 0; u < UNROLL; ++u) {
                    const float pe = expf(sc[u] - mb);  // invalid positions: exp(-inf) = 0
                    lsum += pe;
#pragma unroll
                    for (int j = 0; j < NV; ++j) {
                        acc[g][4 * j] = fmaf(pe, vr[u][j].x, acc[g][4 * j]);
                        acc[g][4 * j + 1] = fmaf(pe, vr[u][j].y, acc[g][4 * j + 1]);
                        acc[g][4 * j + 2] = fmaf(pe, vr[u][j].z, acc[g][4 * j + 2]);
                        acc[g][4 * j + 3] = fmaf(pe, vr[u][j].w, acc[g][4 * j + 3]);
                    }
                }
                l[g] = lsum;
                m[g] = mb;
            }
        }
    }

    // Merge the 4 groups of the warp (lanes with the same gl hold the same dims).
#pragma unroll
    for (int off = 8; off <= 16; off <<= 1) {
#pragma unroll
        for (int g = 0; g < G; ++g) {
            const float m2 = __shfl_xor_sync(FULL_MASK, m[g], off);
            const float l2 = __shfl_xor_sync(FULL_MASK, l[g], off);
            float a, b;
            softmax_merge(m[g], l[g], m2, l2, a, b);
#pragma unroll
            for (int d = 0; d < DPL; ++d) {
                const float o = __shfl_xor_sync(FULL_MASK, acc[g][d], off);
                acc[g][d] = acc[g][d] * a + o * b;
            }
        }
    }
    if (lane < 8) {
#pragma unroll
        for (int g = 0; g < G; ++g) {
            if (lane == 0) {
                w_m[warp * ATT_MAX_G + g] = m[g];
                w_l[warp * ATT_MAX_G + g] = l[g];
            }
#pragma unroll
            for (int d = 0; d < DPL; ++d) w_acc[(warp * ATT_MAX_G + g) * ATT_MAX_HD + gl * DPL + d] = acc[g][d];
        }
    }
    __syncthreads();
    // Merge the warps: thread -> (g, dim).
    for (int idx = t; idx < G * HD; idx += THREADS) {
        const int g = idx / HD, d = idx % HD;
        float M = NEG_INF, L = 0.f, A = 0.f;
#pragma unroll
        for (int wi = 0; wi < NWARPS; ++wi) {
            float a, b;
            softmax_merge(M, L, w_m[wi * ATT_MAX_G + g], w_l[wi * ATT_MAX_G + g], a, b);
            A = A * a + w_acc[(wi * ATT_MAX_G + g) * ATT_MAX_HD + d] * b;
        }
        c_acc[g * ATT_MAX_HD + d] = A;
        if (d == 0) {
            c_m[g] = M;
            c_l[g] = L;
        }
    }
    cluster_sync();  // every block's merged state is in its shared memory
    if (split == 0) {
        for (int idx = t; idx < G * HD; idx += THREADS) {
            const int g = idx / HD, d = idx % HD;
            float M = NEG_INF, L = 0.f, A = 0.f;
#pragma unroll
            for (u32 r = 0; r < ATT_SPLITS; ++r) {
                float a, b;
                softmax_merge(M, L, ld_cluster_f32(c_m + g, r), ld_cluster_f32(c_l + g, r), a, b);
                A = A * a + ld_cluster_f32(c_acc + g * ATT_MAX_HD + d, r) * b;
            }
            out[(size_t)(kvh * G + g) * HD + d] = A / L;
        }
    }
    cluster_sync();  // keep every block's shared memory alive until block 0 has read it
}

extern "C" __global__ void __cluster_dims__(ATT_SPLITS, 1, 1) __launch_bounds__(ATT_THREADS)
attention_decode(const float* __restrict__ q, const float* __restrict__ k_cache, const float* __restrict__ v_cache,
                 float* __restrict__ out, int n_heads, int n_kv_heads, int head_dim, int seq_len, float scale) {
    __shared__ __align__(16) float smem[ATT_SMEM_FLOATS(ATT_THREADS)];
    const int G = n_kv_heads > 0 ? n_heads / n_kv_heads : 0;
    const int key = (head_dim == 64 ? 0 : head_dim == 128 ? 8 : 64) + G;
    switch (key) {
        case 1: attention_decode_impl<64, 1, ATT_THREADS, ATT_UNROLL_64>(q, k_cache, v_cache, out, n_kv_heads, seq_len, scale, smem); break;
        case 2: attention_decode_impl<64, 2, ATT_THREADS, ATT_UNROLL_64>(q, k_cache, v_cache, out, n_kv_heads, seq_len, scale, smem); break;
        case 3: attention_decode_impl<64, 3, ATT_THREADS, ATT_UNROLL_64>(q, k_cache, v_cache, out, n_kv_heads, seq_len, scale, smem); break;
        case 4: attention_decode_impl<64, 4, ATT_THREADS, ATT_UNROLL_64>(q, k_cache, v_cache, out, n_kv_heads, seq_len, scale, smem); break;
        case 9: attention_decode_impl<128, 1, ATT_THREADS, ATT_UNROLL_128>(q, k_cache, v_cache, out, n_kv_heads, seq_len, scale, smem); break;
        case 10: attention_decode_impl<128, 2, ATT_THREADS, ATT_UNROLL_128>(q, k_cache, v_cache, out, n_kv_heads, seq_len, scale, smem); break;
        case 11: attention_decode_impl<128, 3, ATT_THREADS, ATT_UNROLL_128>(q, k_cache, v_cache, out, n_kv_heads, seq_len, scale, smem); break;
        case 12: attention_decode_impl<128, 4, ATT_THREADS, ATT_UNROLL_128>(q, k_cache, v_cache, out, n_kv_heads, seq_len, scale, smem); break;
        default:
            // Unsupported shape: NaN everywhere this block would have written (block 0 of each cluster).
            if (cluster_ctarank() == 0 && head_dim > 0)
                for (int idx = threadIdx.x; idx < (G > 0 ? G : 1) * head_dim; idx += blockDim.x)
                    out[(size_t)blockIdx.y * (G > 0 ? G : 1) * head_dim + idx] = __int_as_float(0x7fc00000);
            break;
    }
}

// ------------------------------------------------------------------------------------------------
// FP32 FMA rate probe: the SIMT "matrix rate" roof the f32 q8_0_matmul is compared with.
// ------------------------------------------------------------------------------------------------
// 8 independent FMA chains per thread, 16 FMAs each per iteration: 256 * iters FLOP per thread. The result
// is written (never 0 in practice) so the compiler cannot drop the loop.
// Launch geometry: block = (256, 1, 1), grid = (SMs * 8, 1, 1).

extern "C" __global__ void __launch_bounds__(256) fma_peak(float* __restrict__ out, int iters) {
    float a0 = threadIdx.x * 1e-7f, a1 = a0 + 1e-7f, a2 = a0 + 2e-7f, a3 = a0 + 3e-7f;
    float a4 = a0 + 4e-7f, a5 = a0 + 5e-7f, a6 = a0 + 6e-7f, a7 = a0 + 7e-7f;
    const float b = 0.999999f, c = 1e-7f;
    for (int i = 0; i < iters; ++i) {
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            a0 = fmaf(a0, b, c); a1 = fmaf(a1, b, c); a2 = fmaf(a2, b, c); a3 = fmaf(a3, b, c);
            a4 = fmaf(a4, b, c); a5 = fmaf(a5, b, c); a6 = fmaf(a6, b, c); a7 = fmaf(a7, b, c);
        }
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
