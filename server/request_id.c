/*
 * server/request_id.c: request id checks and the per-process id generator (see request_id.h).
 * Runs in HTTP workers.
 */
#include "server/request_id.h"

#include "common/log.h"
#include "common/util.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <unistd.h>

static uint64_t rid_state[4];
static bool rid_seeded;

bool request_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

/* splitmix64: spreads a weak fallback seed over the whole state. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void request_id_seed(void)
{
    if (RAND_bytes((unsigned char *)rid_state, sizeof(rid_state)) != 1) {
        log_warn("RAND_bytes failed; request ids are seeded from the clock and the pid");
        uint64_t x = (uint64_t)clock_realtime_ns() ^ ((uint64_t)getpid() << 32);
        for (int i = 0; i < 4; i++)
            rid_state[i] = splitmix64(&x);
    }
    if ((rid_state[0] | rid_state[1] | rid_state[2] | rid_state[3]) == 0)
        rid_state[0] = 1; /* the one state xoshiro cannot leave */
    rid_seeded = true;
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna, public domain reference). */
static uint64_t next64(void)
{
    uint64_t *s = rid_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void request_id_generate(char out[REQUEST_ID_GENERATED_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    if (!rid_seeded)
        request_id_seed();
    for (int half = 0; half < 2; half++) {
        uint64_t v = next64();
        for (int i = 0; i < 16; i++)
            out[half * 16 + i] = hex[(v >> (60 - 4 * i)) & 0xf];
    }
    out[REQUEST_ID_GENERATED_LEN] = '\0';
}
