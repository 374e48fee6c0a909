/*
 * Ciphermine native bignum kernel: a thin N-API layer over GMP.
 *
 * Why it exists: JS BigInt multiplies 4096-bit numbers about 6x slower than GMP, and node:crypto
 * offers no modular multiply, inverse or fixed-base exponentiation. Everything here is stateless
 * except FixedBase tables, which are owned by the JS object that wraps them (finalised by GC).
 * Numbers cross the boundary as BigInt words, so no hex or decimal conversion is paid.
 *
 * Secret exponents go through mpz_powm_sec (constant time) when the caller asks for it.
 */
#include <node_api.h>
#include <gmp.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <openssl/evp.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define CHECK(call)                                                            \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      napi_throw_error(env, "ERR_CIPHERMINE_NATIVE", "N-API call failed: " #call); \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

static int from_bigint(napi_env env, napi_value v, mpz_t out) {
  size_t count = 0;
  int sign = 0;
  /* sign must be NULL when only asking for the word count (N-API's rule) */
  if (napi_get_value_bigint_words(env, v, NULL, &count, NULL) != napi_ok) {
    napi_throw_type_error(env, "ERR_CIPHERMINE_NATIVE", "expected a bigint");
    return 0;
  }
  if (count == 0) { mpz_set_ui(out, 0); return 1; }
  uint64_t *words = malloc(count * sizeof(uint64_t));
  if (!words) { napi_throw_error(env, NULL, "out of memory"); return 0; }
  if (napi_get_value_bigint_words(env, v, &sign, &count, words) != napi_ok) {
    free(words);
    napi_throw_type_error(env, "ERR_CIPHERMINE_NATIVE", "expected a bigint");
    return 0;
  }
  mpz_import(out, count, -1, sizeof(uint64_t), 0, 0, words);
  if (sign) mpz_neg(out, out);
  free(words);
  return 1;
}

static napi_value to_bigint(napi_env env, const mpz_t z) {
  napi_value result;
  size_t count = (mpz_sizeinbase(z, 2) + 63) / 64;
  if (mpz_sgn(z) == 0) {
    CHECK(napi_create_bigint_uint64(env, 0, &result));
    return result;
  }
  uint64_t *words = calloc(count, sizeof(uint64_t));
  if (!words) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  size_t written = 0;
  mpz_export(words, &written, -1, sizeof(uint64_t), 0, 0, z);
  napi_status st = napi_create_bigint_words(env, mpz_sgn(z) < 0, written, words, &result);
  free(words);
  if (st != napi_ok) { napi_throw_error(env, NULL, "cannot create bigint"); return NULL; }
  return result;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "ERR_CIPHERMINE_NATIVE", "too few arguments");
    return 0;
  }
  return 1;
}

/* Reduces a possibly negative base into [0, mod) and checks mod > 1 (odd for powm_sec). */
static int check_mod(napi_env env, const mpz_t mod) {
  if (mpz_cmp_ui(mod, 1) <= 0) {
    napi_throw_range_error(env, "ERR_CIPHERMINE_NATIVE", "modulus must be > 1");
    return 0;
  }
  return 1;
}

/* powm(base, exp, mod, secret): exp >= 0; secret selects the constant-time ladder. */
static napi_value Powm(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  mpz_t b, e, m, r;
  mpz_inits(b, e, m, r, NULL);
  napi_value out = NULL;
  bool secret = false;
  if (from_bigint(env, argv[0], b) && from_bigint(env, argv[1], e) && from_bigint(env, argv[2], m) &&
      napi_get_value_bool(env, argv[3], &secret) == napi_ok && check_mod(env, m)) {
    if (mpz_sgn(e) < 0) {
      napi_throw_range_error(env, "ERR_CIPHERMINE_NATIVE", "exponent must be >= 0");
    } else {
      mpz_mod(b, b, m);
      if (secret && mpz_odd_p(m) && mpz_sgn(e) > 0) mpz_powm_sec(r, b, e, m);
      else mpz_powm(r, b, e, m);
      out = to_bigint(env, r);
    }
  }
  mpz_clears(b, e, m, r, NULL);
  return out;
}

/* mulmod(a, b, mod) */
static napi_value Mulmod(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  mpz_t a, b, m;
  mpz_inits(a, b, m, NULL);
  napi_value out = NULL;
  if (from_bigint(env, argv[0], a) && from_bigint(env, argv[1], b) && from_bigint(env, argv[2], m) &&
      check_mod(env, m)) {
    mpz_mul(a, a, b);
    mpz_mod(a, a, m);
    out = to_bigint(env, a);
  }
  mpz_clears(a, b, m, NULL);
  return out;
}

/* invert(a, mod): returns -1n when a has no inverse, so JS can raise a typed error. */
static napi_value Invert(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  mpz_t a, m, r;
  mpz_inits(a, m, r, NULL);
  napi_value out = NULL;
  if (from_bigint(env, argv[0], a) && from_bigint(env, argv[1], m) && check_mod(env, m)) {
    if (mpz_invert(r, a, m) == 0) mpz_set_si(r, -1);
    out = to_bigint(env, r);
  }
  mpz_clears(a, m, r, NULL);
  return out;
}

/*
 * Fixed-base table: rows[i][j] = base^(j * 2^(w*i)) mod m for j < 2^w, i < windows.
 * An exponent of up to w*windows bits then costs one multiply per window and no squaring.
 */
typedef struct {
  mpz_t mod;
  unsigned w;
  size_t windows;
  mpz_t *entries; /* windows * 2^w */
} fixed_base_t;

static void fixed_base_free(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  fixed_base_t *t = data;
  size_t n = t->windows << t->w;
  for (size_t i = 0; i < n; i++) mpz_clear(t->entries[i]);
  free(t->entries);
  mpz_clear(t->mod);
  free(t);
}

/* fixedBaseTable(base, mod, expBits, window) -> external */
static napi_value FixedBaseTable(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  uint32_t bits = 0, w = 0;
  mpz_t base;
  mpz_init(base);
  fixed_base_t *t = calloc(1, sizeof(fixed_base_t));
  mpz_init(t->mod);
  if (!from_bigint(env, argv[0], base) || !from_bigint(env, argv[1], t->mod) || !check_mod(env, t->mod) ||
      napi_get_value_uint32(env, argv[2], &bits) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &w) != napi_ok || w < 1 || w > 12 || bits < 1) {
    if (!w || w > 12 || !bits) napi_throw_range_error(env, "ERR_CIPHERMINE_NATIVE", "bad table shape");
    mpz_clear(base); mpz_clear(t->mod); free(t);
    return NULL;
  }
  t->w = w;
  t->windows = (bits + w - 1) / w;
  size_t per = (size_t)1 << w;
  t->entries = malloc(t->windows * per * sizeof(mpz_t));
  mpz_mod(base, base, t->mod);
  mpz_t row_base;
  mpz_init_set(row_base, base);
  for (size_t i = 0; i < t->windows; i++) {
    mpz_t *row = t->entries + i * per;
    mpz_init_set_ui(row[0], 1);
    for (size_t j = 1; j < per; j++) {
      mpz_init(row[j]);
      mpz_mul(row[j], row[j - 1], row_base);
      mpz_mod(row[j], row[j], t->mod);
    }
    /* next row's base is row_base^(2^w) = row[per-1] * row_base */
    mpz_mul(row_base, row[per - 1], row_base);
    mpz_mod(row_base, row_base, t->mod);
  }
  mpz_clear(row_base);
  mpz_clear(base);
  napi_value ext;
  if (napi_create_external(env, t, fixed_base_free, NULL, &ext) != napi_ok) {
    fixed_base_free(env, t, NULL);
    napi_throw_error(env, NULL, "cannot wrap table");
    return NULL;
  }
  int64_t bytes = (int64_t)(t->windows * per * (mpz_sizeinbase(t->mod, 2) / 8 + 16));
  int64_t ignored;
  napi_adjust_external_memory(env, bytes, &ignored);
  return ext;
}

/* fixedBasePow(table, exp) -> bigint; exp must be >= 0 and fit the table (JS checks). */
static napi_value FixedBasePow(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  fixed_base_t *t = NULL;
  CHECK(napi_get_value_external(env, argv[0], (void **)&t));
  mpz_t e, r;
  mpz_inits(e, r, NULL);
  napi_value out = NULL;
  if (from_bigint(env, argv[1], e)) {
    if (mpz_sgn(e) < 0 || mpz_sizeinbase(e, 2) > t->windows * t->w) {
      napi_throw_range_error(env, "ERR_CIPHERMINE_NATIVE", "exponent does not fit the fixed-base table");
    } else {
      size_t per = (size_t)1 << t->w;
      mpz_set_ui(r, 1);
      size_t nbits = mpz_sizeinbase(e, 2);
      for (size_t i = 0; i * t->w < nbits; i++) {
        unsigned long digit = 0;
        for (unsigned k = 0; k < t->w; k++) digit |= (unsigned long)mpz_tstbit(e, i * t->w + k) << k;
        if (digit) {
          mpz_mul(r, r, t->entries[i * per + digit]);
          mpz_mod(r, r, t->mod);
        }
      }
      out = to_bigint(env, r);
    }
  }
  mpz_clears(e, r, NULL);
  return out;
}

/* powm2(b1, e1, b2, e2, mod): b1^e1 * b2^e2 with one shared squaring chain (Shamir's trick). */
static napi_value Powm2(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  mpz_t b1, e1, b2, e2, m, b12, r;
  mpz_inits(b1, e1, b2, e2, m, b12, r, NULL);
  napi_value out = NULL;
  if (from_bigint(env, argv[0], b1) && from_bigint(env, argv[1], e1) && from_bigint(env, argv[2], b2) &&
      from_bigint(env, argv[3], e2) && from_bigint(env, argv[4], m) && check_mod(env, m)) {
    if (mpz_sgn(e1) < 0 || mpz_sgn(e2) < 0) {
      napi_throw_range_error(env, "ERR_CIPHERMINE_NATIVE", "exponents must be >= 0");
    } else {
      mpz_mod(b1, b1, m);
      mpz_mod(b2, b2, m);
      mpz_mul(b12, b1, b2);
      mpz_mod(b12, b12, m);
      size_t n1 = mpz_sizeinbase(e1, 2), n2 = mpz_sizeinbase(e2, 2);
      size_t n = n1 > n2 ? n1 : n2;
      mpz_set_ui(r, 1);
      for (size_t i = n; i-- > 0;) {
        mpz_mul(r, r, r);
        mpz_mod(r, r, m);
        int x = mpz_tstbit(e1, i), y = mpz_tstbit(e2, i);
        if (x | y) {
          mpz_mul(r, r, x && y ? b12 : (x ? b1 : b2));
          mpz_mod(r, r, m);
        }
      }
      out = to_bigint(env, r);
    }
  }
  mpz_clears(b1, e1, b2, e2, m, b12, r, NULL);
  return out;
}

/*
 * multipow(bases[], exps[], mod): prod bases[i]^exps[i] with one shared squaring chain (Straus,
 * one bit at a time, bases grouped by four with subset products): for t short exponents of L bits
 * this costs L squarings and about (t / 4) L multiplications instead of t L squarings. Exponents
 * must be >= 0.
 */
static napi_value Multipow(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  uint32_t n = 0, n2 = 0;
  if (napi_get_array_length(env, argv[0], &n) != napi_ok || napi_get_array_length(env, argv[1], &n2) != napi_ok || n != n2) {
    napi_throw_type_error(env, "ERR_CIPHERMINE_NATIVE", "bases and exponents must be arrays of equal length");
    return NULL;
  }
  mpz_t m, r;
  mpz_inits(m, r, NULL);
  mpz_t *b = calloc(n ? n : 1, sizeof(mpz_t));
  mpz_t *e = calloc(n ? n : 1, sizeof(mpz_t));
  for (uint32_t i = 0; i < n; i++) { mpz_init(b[i]); mpz_init(e[i]); }
  napi_value out = NULL;
  int ok = from_bigint(env, argv[2], m) && check_mod(env, m);
  size_t maxbits = 0;
  for (uint32_t i = 0; ok && i < n; i++) {
    napi_value bv, ev;
    ok = napi_get_element(env, argv[0], i, &bv) == napi_ok && napi_get_element(env, argv[1], i, &ev) == napi_ok &&
         from_bigint(env, bv, b[i]) && from_bigint(env, ev, e[i]);
    if (ok && mpz_sgn(e[i]) < 0) {
      napi_throw_range_error(env, "ERR_CIPHERMINE_NATIVE", "exponents must be >= 0");
      ok = 0;
    }
    if (ok) {
      mpz_mod(b[i], b[i], m);
      size_t bits = mpz_sgn(e[i]) ? mpz_sizeinbase(e[i], 2) : 0;
      if (bits > maxbits) maxbits = bits;
    }
  }
  if (ok) {
    /* Bases in groups of up to four, each with the products of all its subsets (11 products for
     * a full group), so every bit costs one multiplication per group instead of one per base. */
    uint32_t groups = (n + 3) / 4;
    mpz_t *sub = calloc(groups ? (size_t)groups * 16 : 1, sizeof(mpz_t));
    for (uint32_t g = 0; g < groups; g++) {
      mpz_t *t = sub + (size_t)g * 16;
      uint32_t size = n - 4 * g < 4 ? n - 4 * g : 4;
      mpz_init_set_ui(t[0], 1);
      for (uint32_t s = 1; s < (1u << size); s++) {
        uint32_t low = s & (~s + 1), idx = 0;
        while ((1u << idx) != low) idx++;
        mpz_init(t[s]);
        if (s == low) {
          mpz_set(t[s], b[4 * g + idx]);
        } else {
          mpz_mul(t[s], t[s ^ low], b[4 * g + idx]);
          mpz_mod(t[s], t[s], m);
        }
      }
      for (uint32_t s = 1u << size; s < 16; s++) mpz_init(t[s]);
    }
    mpz_set_ui(r, 1);
    for (size_t bit = maxbits; bit-- > 0;) {
      mpz_mul(r, r, r);
      mpz_mod(r, r, m);
      for (uint32_t g = 0; g < groups; g++) {
        uint32_t s = 0;
        for (uint32_t j = 0; j < 4 && 4 * g + j < n; j++) s |= (uint32_t)mpz_tstbit(e[4 * g + j], bit) << j;
        if (s) {
          mpz_mul(r, r, sub[(size_t)g * 16 + s]);
          mpz_mod(r, r, m);
        }
      }
    }
    for (size_t i = 0; i < (size_t)groups * 16; i++) mpz_clear(sub[i]);
    free(sub);
    mpz_mod(r, r, m);
    out = to_bigint(env, r);
  }
  for (uint32_t i = 0; i < n; i++) { mpz_clear(b[i]); mpz_clear(e[i]); }
  free(b);
  free(e);
  mpz_clears(m, r, NULL);
  return out;
}

/*
 * Z_2^64 matrix product for the secret-sharing engine (src/mpc/ring.ts): out (m x n) = a (m x k)
 * times b (k x n), row-major BigUint64Arrays, wrapping modulo 2^64 as uint64_t arithmetic does.
 * The TypeScript fallback computes the same bits.
 */
/* The data of a typed array of the wanted type, or a thrown TypeError naming it. */
static int typed_array(napi_env env, napi_value v, napi_typedarray_type want, const char *name, void **data, size_t *len) {
  napi_typedarray_type type;
  napi_value buf;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, len, data, &buf, &offset) != napi_ok || type != want) {
    napi_throw_type_error(env, NULL, name);
    return 0;
  }
  return 1;
}

static int u64_array(napi_env env, napi_value v, uint64_t **data, size_t *len) {
  return typed_array(env, v, napi_biguint64_array, "expected a BigUint64Array", (void **)data, len);
}

/*
 * out = a b modulo 2^64 (m x k by k x n, row-major). Built twice where the compiler can: for AVX2
 * (four 64-bit lanes; the product is emulated from 32-bit multiplies) and for any x86-64, the
 * loader picking the clone the CPU supports at run time. Same bits either way.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void ring_matmul(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t m, size_t k, size_t n) {
  for (size_t i = 0; i < m; i++) {
    uint64_t *row = out + i * n;
    for (size_t j = 0; j < n; j++) row[j] = 0;
    for (size_t t = 0; t < k; t++) {
      const uint64_t x = a[i * k + t];
      const uint64_t *brow = b + t * n;
      for (size_t j = 0; j < n; j++) row[j] += x * brow[j];
    }
  }
}

static napi_value RingMatmul(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  uint64_t *a, *b, *out;
  size_t la, lb, lo;
  uint32_t m, k, n;
  if (!u64_array(env, argv[0], &a, &la) || !u64_array(env, argv[1], &b, &lb) || !u64_array(env, argv[2], &out, &lo)) return NULL;
  if (napi_get_value_uint32(env, argv[3], &m) != napi_ok || napi_get_value_uint32(env, argv[4], &k) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "dimensions must be unsigned integers");
    return NULL;
  }
  if (la != (size_t)m * k || lb != (size_t)k * n || lo != (size_t)m * n) {
    napi_throw_range_error(env, NULL, "array lengths do not match the dimensions");
    return NULL;
  }
  ring_matmul(a, b, out, m, k, n);
  return NULL;
}

static int u8_array(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  return typed_array(env, v, napi_uint8_array, "expected a Uint8Array", (void **)data, len);
}

/*
 * Bit-matrix transpose for OT extension (IKNP): in is rows x cols bits, row-major, bits LSB first
 * within each byte; out is cols x rows bits in the same layout. rows must be a multiple of 16 and
 * cols of 8. With SSE2 each 16 x 8 block is 16 byte loads and 8 movemasks (the byte's top bit of
 * sixteen rows at once); without it, the same result bit by bit.
 */
static void bit_transpose(const uint8_t *in, uint8_t *out, size_t rows, size_t cols) {
  const size_t in_stride = cols / 8, out_stride = rows / 8;
  /* Tiles of 16 rows x 64 column bytes are first copied together: rows of a large matrix lie a
     multiple of 4 KB apart and would otherwise evict each other from the same L1 set. */
  uint8_t tile[16 * 64];
  for (size_t t0 = 0; t0 < in_stride; t0 += 64) {
    const size_t width = t0 + 64 < in_stride ? 64 : in_stride - t0;
    for (size_t r = 0; r < rows; r += 16) {
      /* Stored column-major (16 rows of one column byte together) for one 128-bit load each. */
      for (int i = 0; i < 16; i++) {
        const uint8_t *row = in + (r + i) * in_stride + t0;
        for (size_t c = 0; c < width; c++) tile[c * 16 + i] = row[c];
      }
      for (size_t c = 0; c < width; c++) {
        const size_t cb = t0 + c;
#ifdef __SSE2__
        __m128i x = _mm_loadu_si128((const __m128i *)(tile + c * 16));
        for (int i = 7; i >= 0; i--) {
          uint16_t mask = (uint16_t)_mm_movemask_epi8(x);
          uint8_t *o = out + (cb * 8 + i) * out_stride + r / 8;
          o[0] = (uint8_t)mask;
          o[1] = (uint8_t)(mask >> 8);
          x = _mm_slli_epi64(x, 1);
        }
#else
        for (int i = 0; i < 8; i++) {
          uint16_t mask = 0;
          for (int k = 0; k < 16; k++) mask |= (uint16_t)((tile[c * 16 + k] >> i) & 1) << k;
          uint8_t *o = out + (cb * 8 + i) * out_stride + r / 8;
          o[0] = (uint8_t)mask;
          o[1] = (uint8_t)(mask >> 8);
        }
#endif
      }
    }
  }
}

static napi_value BitTranspose(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  uint8_t *in, *out;
  size_t lin, lout;
  uint32_t rows, cols;
  if (!u8_array(env, argv[0], &in, &lin) || !u8_array(env, argv[1], &out, &lout)) return NULL;
  if (napi_get_value_uint32(env, argv[2], &rows) != napi_ok || napi_get_value_uint32(env, argv[3], &cols) != napi_ok) {
    napi_throw_type_error(env, NULL, "dimensions must be unsigned integers");
    return NULL;
  }
  if (rows % 16 != 0 || cols % 8 != 0 || lin != (size_t)rows * cols / 8 || lout != lin) {
    napi_throw_range_error(env, NULL, "a bit transpose needs rows divisible by 16, columns by 8, and matching lengths");
    return NULL;
  }
  bit_transpose(in, out, rows, cols);
  return NULL;
}

/*
 * The tweakable correlation-robust hash of IKNP rows, H(j, x) = pi(pi(y) ^ j) ^ pi(y) with
 * y = x ^ mask and pi fixed-key AES-128 (OpenSSL's EVP, exported by Node itself), for rows
 * j = tweak, tweak + 1, ...: the TypeScript fallback (src/mpc/ot/iknp.ts) gives the same bytes.
 */
#define OT_HASH_BLOCKS 4096
static napi_value OtHash(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  uint8_t *rows, *out, *key, *mask;
  size_t lrows, lout, lkey, lmask;
  double tweak;
  if (!u8_array(env, argv[0], &rows, &lrows) || !u8_array(env, argv[1], &out, &lout) || !u8_array(env, argv[2], &key, &lkey) ||
      !u8_array(env, argv[4], &mask, &lmask)) return NULL;
  if (napi_get_value_double(env, argv[3], &tweak) != napi_ok || lrows % 16 != 0 || lout != lrows || lkey != 16 || lmask != 16) {
    napi_throw_range_error(env, NULL, "otHash needs 16-byte rows, an output of the same length, a 16-byte key and mask");
    return NULL;
  }
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_128_ecb(), NULL, key, NULL) != 1) {
    if (ctx) EVP_CIPHER_CTX_free(ctx);
    napi_throw_error(env, "ERR_CIPHERMINE_NATIVE", "AES initialisation failed");
    return NULL;
  }
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  /* Per call, not static: worker threads may hash at the same time. */
  uint8_t *y = malloc(OT_HASH_BLOCKS * 16), *z = malloc(OT_HASH_BLOCKS * 16);
  if (!y || !z) {
    free(y);
    free(z);
    EVP_CIPHER_CTX_free(ctx);
    napi_throw_error(env, "ERR_CIPHERMINE_NATIVE", "out of memory");
    return NULL;
  }
  uint64_t m0, m1, j = (uint64_t)tweak;
  memcpy(&m0, mask, 8);
  memcpy(&m1, mask + 8, 8);
  const size_t total = lrows / 16;
  for (size_t at = 0; at < total; at += OT_HASH_BLOCKS) {
    const size_t n = total - at < OT_HASH_BLOCKS ? total - at : OT_HASH_BLOCKS;
    uint64_t *src = (uint64_t *)z;
    memcpy(z, rows + at * 16, n * 16);
    for (size_t i = 0; i < n; i++) { src[2 * i] ^= m0; src[2 * i + 1] ^= m1; }
    int len;
    EVP_EncryptUpdate(ctx, y, &len, z, (int)(n * 16));
    uint64_t *yw = (uint64_t *)y, *zw = (uint64_t *)z;
    for (size_t i = 0; i < n; i++) { zw[2 * i] = yw[2 * i] ^ (j + at + i); zw[2 * i + 1] = yw[2 * i + 1]; }
    EVP_EncryptUpdate(ctx, z, &len, z, (int)(n * 16));
    uint64_t *o = (uint64_t *)(out + at * 16);
    for (size_t i = 0; i < 2 * n; i++) o[i] = zw[i] ^ yw[i];
  }
  free(y);
  free(z);
  EVP_CIPHER_CTX_free(ctx);
  return NULL;
}

/* Elementwise a op b modulo 2^64 into out: op 0 add, 1 subtract, 2 multiply (vectorised where the CPU allows). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void ring_elementwise(int op, const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n) {
  if (op == 0) for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
  else if (op == 1) for (size_t i = 0; i < n; i++) out[i] = a[i] - b[i];
  else for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

static napi_value RingElementwise(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  uint32_t op;
  uint64_t *a, *b, *out;
  size_t la, lb, lo;
  if (napi_get_value_uint32(env, argv[0], &op) != napi_ok || op > 2) {
    napi_throw_type_error(env, NULL, "op is 0 (add), 1 (subtract) or 2 (multiply)");
    return NULL;
  }
  if (!u64_array(env, argv[1], &a, &la) || !u64_array(env, argv[2], &b, &lb) || !u64_array(env, argv[3], &out, &lo)) return NULL;
  if (la != lb || la != lo) {
    napi_throw_range_error(env, NULL, "array lengths differ");
    return NULL;
  }
  ring_elementwise((int)op, a, b, out, la);
  return NULL;
}

/*
 * Unary maps modulo 2^64 into out: op 0 multiplies by the scalar c (c = 2^64 - 1 negates); op 1
 * shifts right by c as a signed (two's complement) value; op 2 is op 1 between two negations,
 * -((-a) >> c): the two halves of the engine's local truncation.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void ring_unary(int op, const uint64_t *a, uint64_t c, uint64_t *out, size_t n) {
  if (op == 0) for (size_t i = 0; i < n; i++) out[i] = a[i] * c;
  else if (op == 1) for (size_t i = 0; i < n; i++) out[i] = (uint64_t)((int64_t)a[i] >> c);
  else for (size_t i = 0; i < n; i++) out[i] = (uint64_t)0 - (uint64_t)((int64_t)((uint64_t)0 - a[i]) >> c);
}

static napi_value RingUnary(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  uint32_t op;
  uint64_t *a, *out, c;
  size_t la, lo;
  bool lossless;
  if (napi_get_value_uint32(env, argv[0], &op) != napi_ok || op > 2) {
    napi_throw_type_error(env, NULL, "op is 0 (scale), 1 (signed shift) or 2 (negated signed shift)");
    return NULL;
  }
  if (!u64_array(env, argv[1], &a, &la) || !u64_array(env, argv[3], &out, &lo)) return NULL;
  if (napi_get_value_bigint_uint64(env, argv[2], &c, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, NULL, "the scalar is a bigint in [0, 2^64)");
    return NULL;
  }
  if (op != 0 && c > 63) {
    napi_throw_range_error(env, NULL, "a shift is 0 to 63 bits");
    return NULL;
  }
  if (la != lo) {
    napi_throw_range_error(env, NULL, "array lengths differ");
    return NULL;
  }
  ring_unary((int)op, a, c, out, la);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"powm", NULL, Powm, NULL, NULL, NULL, napi_default, NULL},
    {"mulmod", NULL, Mulmod, NULL, NULL, NULL, napi_default, NULL},
    {"invert", NULL, Invert, NULL, NULL, NULL, napi_default, NULL},
    {"fixedBaseTable", NULL, FixedBaseTable, NULL, NULL, NULL, napi_default, NULL},
    {"fixedBasePow", NULL, FixedBasePow, NULL, NULL, NULL, napi_default, NULL},
    {"powm2", NULL, Powm2, NULL, NULL, NULL, napi_default, NULL},
    {"multipow", NULL, Multipow, NULL, NULL, NULL, napi_default, NULL},
    {"ringMatmul", NULL, RingMatmul, NULL, NULL, NULL, napi_default, NULL},
    {"ringElementwise", NULL, RingElementwise, NULL, NULL, NULL, napi_default, NULL},
    {"ringUnary", NULL, RingUnary, NULL, NULL, NULL, napi_default, NULL},
    {"bitTranspose", NULL, BitTranspose, NULL, NULL, NULL, napi_default, NULL},
    {"otHash", NULL, OtHash, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
