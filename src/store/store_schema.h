/* store_schema — the database schema as numbered migrations. Append only: a released
 * migration is never edited, a change is a new migration. */
#ifndef COMFYGATE_STORE_SCHEMA_H
#define COMFYGATE_STORE_SCHEMA_H

#include <stddef.h>

struct store_migration {
    int version;
    const char *sql;
};

size_t store_migration_count(void);
const struct store_migration *store_migration(size_t i);

#endif
