/*
 * common/cachekey.c: report cache keys (see cachekey.h). Run by the HTTP workers.
 *
 * The SHA-256 implementation is fetched from OpenSSL once per process (an explicit fetch
 * avoids the per-call implicit lookup of OpenSSL 3), and each thread keeps one digest context
 * for its whole life: EVP_Digest would allocate, initialise and free a context per call (about
 * 450 instructions of a cached read by callgrind; bench/README "Where a local hit's time goes").
 */
#include "common/cachekey.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/json_out.h"
#include "common/log.h"

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void cachekey_canonical(jbuf *out, const struct cachekey_params *p)
{
    jbuf_puts(out, "{\"breakdown\":");
    jout_string(out, p->breakdown, p->breakdown ? p->breakdown_len : 0);
    jbuf_puts(out, ",\"date_from\":");
    jout_date(out, p->date_from);
    jbuf_puts(out, ",\"date_to\":");
    jout_date(out, p->date_to);
    jbuf_puts(out, ",\"limit\":");
    jout_int(out, p->limit);
    jbuf_puts(out, ",\"offset\":");
    jout_int(out, p->offset);
    jbuf_puts(out, ",\"source\":");
    jout_string(out, p->source, p->source ? p->source_len : 0);
    jbuf_puts(out, ",\"status\":");
    jout_string(out, p->status, p->status ? p->status_len : 0);
    jbuf_puts(out, ",\"window\":");
    jout_cstr(out, p->window ? p->window : "");
    jbuf_putc(out, '}');
}

void cachekey_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    static __thread EVP_MD_CTX *ctx; /* never freed: one per thread, reused */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    pthread_once(&sha256_once, sha256_fetch);
    if (ctx == NULL)
        ctx = EVP_MD_CTX_new();
    if (sha256_md == NULL || ctx == NULL || !EVP_DigestInit_ex2(ctx, sha256_md, NULL) ||
        !EVP_DigestUpdate(ctx, data, len) || !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
        log_error("cachekey: OpenSSL SHA-256 is unavailable");
        abort();
    }
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

void cachekey_entry(jbuf *out, const char *slug, size_t slug_len, int64_t version, const char *hash)
{
    jbuf_puts(out, "report:");
    jbuf_append(out, slug, slug_len);
    jbuf_puts(out, ":v");
    jout_int(out, version);
    jbuf_putc(out, ':');
    jbuf_append(out, hash, 64);
}

void cachekey_version(jbuf *out, const char *slug, size_t slug_len)
{
    jbuf_puts(out, "report:version:");
    jbuf_append(out, slug, slug_len);
}
