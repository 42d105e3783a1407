/*
 * rsapath.c - which of OpenSSL's RSA code paths scepd runs on.
 *
 * On x86-64 OpenSSL uses MULX/ADCX/ADOX for modular multiplication when
 * the CPU has BMI2 and ADX, and otherwise, with AVX2, its RSAZ vector code.
 * Which is faster depends on the machine: on the 2-core virtual machines
 * scepd is benchmarked on, `openssl speed rsa2048` signs 1.5-1.7 times as
 * fast with OPENSSL_ia32cap=":~0x80100" (BMI2 and ADX hidden, so AVX2 is
 * used) as without (1068-1107 vs 1664-1671 signs/s in one run), where on
 * other hosts the MULX path is the faster one.  Both are OpenSSL's own,
 * constant-time code; only the speed differs.
 *
 * OpenSSL reads OPENSSL_ia32cap once, when libcrypto is loaded, so the
 * choice is made before serving: with --rsa-path auto (the default) each
 * path signs and verifies with the RA key for a moment in a child process
 * of its own (`scepd rsa-speed`), twice, alternating; if the AVX2 path is
 * faster by RSA_PATH_MARGIN, scepd executes itself again with
 * OPENSSL_ia32cap set.
 *
 * Verifying counts as much as signing because an enrollment does both
 * about equally often (three private-key operations; the request's
 * signature, the CSR's and the reply's encryption to the client), and
 * because on a CPU with AVX-512 IFMA the two paths sign alike (OpenSSL
 * computes both CRT halves of an RSA-2048 signature with IFMA either way:
 * 4100 against 3950 signs/s) while hiding BMI2 and ADX makes every
 * public-key operation slower (61000 against 44000 verifies/s): timed by
 * signing alone, noise chose AVX2 there.  SCEPD_RSA_PATH in the environment marks the
 * decision so it is made once, and is how the new image logs it.  An
 * operator's own OPENSSL_ia32cap is always left alone.
 */
#include <cpuid.h>
#include <errno.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "daemon.h"
#include "scepd/log.h"
#include "scepd/num.h"
#include "scepd/pki.h"
#include "scepd/setup.h"

/*
 * How much faster AVX2 must measure to be chosen.  Small: on the machines
 * measured the gap moved between 1.06x and 1.7x within the hour (the host's
 * other load weighs on the scalar multiplier MULX uses), and AVX2 never
 * measured slower, so a small lead at start is taken as a sign of a large
 * one later; where MULX is the faster (most bare-metal CPUs) it leads.
 */
#define RSA_PATH_MARGIN 1.03
#define RSA_PATH_AVX2_CAP ":~0x80100" /* the second word: BMI2 (bit 8) and ADX (bit 19) */
#define SPEED_MS 150

extern char **environ;

int
scepd_rsa_speed_main(int argc, char **argv)
{
    EVP_PKEY *key = NULL;
    unsigned char sig[1024], msg[32] = "scepd rsa-speed";
    struct timespec t0, t;
    long long ms;
    double secs = 0;
    long n = 0;

    if (argc != 4 || scep_strtonum(argv[3], 10, 10000, &ms) != SCEP_OK) {
        fprintf(stderr, "usage: scepd rsa-speed KEYFILE MILLISECONDS (used by scepd serve)\n");
        return 2;
    }
    if (scep_pki_read_key(argv[2], &key) != SCEP_OK) {
        fprintf(stderr, "scepd rsa-speed: cannot read %s\n", argv[2]);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        size_t len = sizeof(sig);
        if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestSign(md, sig, &len, msg, sizeof(msg)) != 1 || EVP_MD_CTX_reset(md) != 1 ||
            EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestVerify(md, sig, len, msg, sizeof(msg)) != 1) {
            EVP_MD_CTX_free(md);
            EVP_PKEY_free(key);
            fprintf(stderr, "scepd rsa-speed: %s cannot sign and verify\n", argv[2]);
            return 1;
        }
        EVP_MD_CTX_free(md);
        n++;
        clock_gettime(CLOCK_MONOTONIC, &t);
        secs = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
    } while (secs * 1000 < (double)ms);
    EVP_PKEY_free(key);
    printf("%.1f\n", (double)n / secs);
    return 0;
}

/*
 * OpenSSL 3 signs with RSA-2048 keys by its AVX-512 IFMA code on both
 * paths here (its ossl_rsaz_avx512ifma_eligible: AVX512F, DQ, IFMA and VL,
 * with the OS saving the ZMM registers): nothing to gain by hiding BMI2
 * and ADX, and its public-key operations lose 30%.
 */
static int
cpu_has_ifma(void)
{
    unsigned a, b, c, d, lo, hi;
    const unsigned need = (1u << 16) | (1u << 17) | (1u << 21) | (1u << 31);

    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) /* OSXSAVE */
        return 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & 0xe6) != 0xe6) /* SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state */
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (b & need) == need;
}

/* The RA key's modulus size; 0 when it cannot be read. */
static int
key_bits(const char *keyfile)
{
    EVP_PKEY *key = NULL;
    int bits = 0;

    if (scep_pki_read_key(keyfile, &key) == SCEP_OK && EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
        bits = EVP_PKEY_get_bits(key);
    EVP_PKEY_free(key);
    return bits;
}

/* Both paths exist on this CPU: BMI2 and ADX (MULX path) and AVX2 (RSAZ path). */
static int
cpu_has_both(void)
{
    unsigned a, b, c, d;

    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (b & (1u << 8)) && (b & (1u << 19)) && (b & (1u << 5));
}

/*
 * Signatures made and verified per second by `scepd rsa-speed` with
 * OPENSSL_ia32cap = cap (NULL: unset); 0 on failure.
 */
static double
child_speed(const char *self, const char *keyfile, const char *cap)
{
    char ms[16], out[64], **env = NULL;
    char *argv[5];
    int pipefd[2], status = 0;
    size_t n = 0, i, k = 0;
    ssize_t r;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    double v = 0;
    char capvar[64];

    for (i = 0; environ[i] != NULL; i++)
        n++;
    if ((env = calloc(n + 2, sizeof(*env))) == NULL)
        return 0;
    for (i = 0; i < n; i++)
        if (strncmp(environ[i], "OPENSSL_ia32cap=", 16) != 0)
            env[k++] = environ[i];
    if (cap != NULL) {
        snprintf(capvar, sizeof(capvar), "OPENSSL_ia32cap=%s", cap);
        env[k++] = capvar;
    }
    env[k] = NULL;
    snprintf(ms, sizeof(ms), "%d", SPEED_MS);
    argv[0] = (char *)(uintptr_t) "scepd";
    argv[1] = (char *)(uintptr_t) "rsa-speed";
    argv[2] = (char *)(uintptr_t)keyfile;
    argv[3] = ms;
    argv[4] = NULL;
    if (pipe(pipefd) != 0) {
        free(env);
        return 0;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    if (posix_spawn(&pid, self, &fa, NULL, argv, env) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    free(env);
    n = 0;
    while (pid > 0 && n < sizeof(out) - 1 &&
           ((r = read(pipefd[0], out + n, sizeof(out) - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
        if (r > 0)
            n += (size_t)r;
    close(pipefd[0]);
    out[n] = '\0';
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        v = strtod(out, NULL);
    return v > 0 ? v : 0;
}

int
scepd_rsa_path_apply(const char *mode, const char *datadir, char **argv)
{
    const char *marker = getenv("SCEPD_RSA_PATH"), *own = getenv("OPENSSL_ia32cap");
    char self[4096], keyfile[4096], note[160];
    double dflt = 0, avx2 = 0;
    ssize_t n;
    int i;

    if (marker != NULL) {
        /*
         * Decided before this image was executed (or by an earlier scepd in
         * this environment).  Executed as /proc/self/exe, the process would
         * be named "exe" in ps, top and pidof; it keeps the name it was
         * started with (its threads take it from here).
         */
        const char *base = argv != NULL && argv[0] != NULL ? strrchr(argv[0], '/') : NULL;
        base = base != NULL ? base + 1 : (argv != NULL && argv[0] != NULL ? argv[0] : "scepd");
        (void)prctl(PR_SET_NAME, base[0] != '\0' ? base : "scepd", 0, 0, 0);
        scep_log(SCEP_LOG_INFO, "main", "rsa %s", marker);
        return 0;
    }
    if (own != NULL) {
        scep_log(SCEP_LOG_INFO, "main", "rsa path=environment OPENSSL_ia32cap=%s", own);
        return 0;
    }
    if (strcmp(mode, "openssl") == 0) {
        scep_log(SCEP_LOG_INFO, "main", "rsa path=openssl chosen_by=--rsa-path");
        return 0;
    }
    if (!cpu_has_both()) {
        scep_log(SCEP_LOG_INFO, "main", "rsa path=openssl reason=\"one path on this CPU\"");
        return 0;
    }
    if (strcmp(mode, "avx2") == 0) {
        snprintf(note, sizeof(note), "path=avx2 chosen_by=--rsa-path");
    } else {
        if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0) {
            scep_log(SCEP_LOG_WARN, "main",
                     "rsa path=openssl reason=\"/proc/self/exe unreadable, nothing measured\"");
            return 0;
        }
        self[n] = '\0';
        if (scep_path(keyfile, sizeof(keyfile), datadir, SCEP_RA_KEY_FILE) != SCEP_OK) {
            scep_log(SCEP_LOG_WARN, "main", "rsa path=openssl reason=\"data path too long\"");
            return 0;
        }
        if (cpu_has_ifma() && key_bits(keyfile) == 2048) {
            scep_log(SCEP_LOG_INFO, "main",
                     "rsa path=openssl reason=\"AVX-512 IFMA: RSA-2048 signs alike on both paths, "
                     "and verifies faster on this one\"");
            return 0;
        }
        for (i = 0; i < 2; i++) {
            double a = child_speed(self, keyfile, NULL),
                   b = child_speed(self, keyfile, RSA_PATH_AVX2_CAP);
            dflt = a > dflt ? a : dflt;
            avx2 = b > avx2 ? b : avx2;
        }
        if (dflt <= 0 || avx2 <= 0) {
            scep_log(SCEP_LOG_WARN, "main",
                     "rsa path=openssl reason=\"could not measure with %s\" openssl=%.0f avx2=%.0f",
                     keyfile, dflt, avx2);
            return 0;
        }
        if (avx2 < RSA_PATH_MARGIN * dflt) {
            scep_log(SCEP_LOG_INFO, "main",
                     "rsa path=openssl chosen_by=measurement sign_verify_per_s=%.0f avx2=%.0f",
                     dflt, avx2);
            return 0;
        }
        snprintf(
            note, sizeof(note),
            "path=avx2 chosen_by=measurement sign_verify_per_s=%.0f openssl_choice=%.0f gain=%.2fx",
            avx2, dflt, avx2 / dflt);
    }
    if (setenv("OPENSSL_ia32cap", RSA_PATH_AVX2_CAP, 1) != 0 ||
        setenv("SCEPD_RSA_PATH", note, 1) != 0) {
        scep_log(SCEP_LOG_WARN, "main", "rsa path=openssl reason=\"cannot set the environment\"");
        return 0;
    }
    execv("/proc/self/exe", argv);
    /* still here: the exec failed; serve as we are */
    unsetenv("OPENSSL_ia32cap");
    unsetenv("SCEPD_RSA_PATH");
    scep_log(SCEP_LOG_WARN, "main", "rsa path=openssl reason=\"executing again failed: %s\"",
             strerror(errno));
    return 0;
}
