/* Stub: replaced by the configuration parser. */
#include "common/config.h"

#include <stdlib.h>
#include <string.h>

static const char *env_lookup(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

config_source config_source_environ(void)
{
    config_source s = {env_lookup, NULL};
    return s;
}

int config_load(config *cfg, config_role role, config_source src, FILE *err)
{
    (void)role;
    memset(cfg, 0, sizeof(*cfg));
    const char *db = src.lookup(src.ctx, "DATABASE_URL");
    if (db == NULL || *db == '\0') {
        fprintf(err, "configuration error: DATABASE_URL is required\n");
        return -1;
    }
    cfg->database_url = strdup(db);
    cfg->app_port = 3004;
    cfg->http_workers = 1;
    cfg->recompute_workers = 1;
    cfg->app_version = strdup("dev");
    return 0;
}

void config_free(config *cfg)
{
    free(cfg->database_url);
    free(cfg->app_version);
    memset(cfg, 0, sizeof(*cfg));
}

/* Stub env-file support. */
struct config_env_file {
    int unused;
};
int config_env_file_load(const char *path, config_env_file **out, const char **error)
{
    (void)path;
    *out = NULL;
    *error = "not implemented";
    return -1;
}
config_source config_env_file_source(config_env_file *f)
{
    (void)f;
    return config_source_environ();
}
void config_env_file_free(config_env_file *f)
{
    (void)f;
}
