// batchguard._backup_values(backup_id): the typed values of a backup of format 2, for
// restore_backup's one INSERT ... SELECT. Each value is parsed by its type's input
// function under the output settings recorded in the file's header (a GUC nest level
// around the parsing only), so a backup restores identically under any session settings;
// the INSERT that consumes the rows runs under the caller's own settings.
#include "backup/settings_scope.hpp"
#include "backup/storage.hpp"
#include "backup/store.hpp"
#include "core/backup_format.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/zstd_stream.hpp"
#include "pg/datum.hpp"
#include "pg/files.hpp"
#include "pg/guard.hpp"
#include "pg/identity.hpp"
#include "pg/sha256.hpp"

extern "C" {
#include "mb/pg_wchar.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"
}

#include <memory>
#include <string>
#include <vector>

using namespace batchguard;
using namespace batchguard::backup;

namespace {

// The header's settings for the scope of one object (restored as a function's SET is).
class HeaderSettings {
  public:
    explicit HeaderSettings(const BackupHeader& header) {
        level_ = pg::pg_call([] { return NewGUCNestLevel(); });
        for (const auto& [name, value] : header.settings) {
            if (!is_pinned_output_setting(name)) continue;
            pg::pg_call([&] {
                (void)set_config_option(name.c_str(), value.c_str(), PGC_USERSET, PGC_S_SESSION,
                                        GUC_ACTION_SAVE, true, 0, false);
            });
        }
    }
    ~HeaderSettings() {
        try {
            pg::pg_call([&] { AtEOXact_GUC(true, level_); });
        } catch (...) {
            // The transaction's abort restores them anyway.
        }
    }
    HeaderSettings(const HeaderSettings&) = delete;
    HeaderSettings& operator=(const HeaderSettings&) = delete;

  private:
    int level_ = -1;
};

struct Wanted {
    int attribute;  // in the result
    int table;      // header index
    std::string column;
    FmgrInfo input;
    Oid ioparam;
    int32 typmod;
};

}  // namespace

BATCHGUARD_FUNCTION(batchguard_backup_values) {
    const Datum id = PG_GETARG_DATUM(0);
    const std::string owner = pg::current_owner();
    pg::pg_call([&] { InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC); });
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    TupleDesc desc = rsinfo->setDesc;
    BackupRecord record;
    std::unique_ptr<BackupSource> file;
    {
        pg::SpiSession spi(pg::SpiSession::Access::kReadOnly);
        std::optional<BackupRecord> found = find_backup(spi, id, owner, false, false);
        if (!found) unknown_backup(id);
        record = *found;
        file = open_backup_source(record, spi, true);
    }
    ZstdReader zstd(*file);
    BackupStreamReader stream(zstd, pg::make_sha256());
    const BackupHeader& header = stream.header();
    if (header.version < 2)
        throw Error(sqlstate::kFeatureNotSupported,
                    "backup " + record.backup_id + " has format version 1");

    // The column definition list: bg_table int4, bg_changed text[], t<i>_c<j> ...
    const int natts = desc->natts;
    if (natts < 2 || TupleDescAttr(desc, 0)->atttypid != INT4OID ||
        TupleDescAttr(desc, 1)->atttypid != TEXTARRAYOID)
        throw Error(sqlstate::kInvalidParameterValue,
                    "_backup_values needs the columns bg_table int4, bg_changed text[] first");
    std::vector<Wanted> wanted;
    std::vector<std::vector<int>> by_table(header.tables.size());
    for (int a = 2; a < natts; ++a) {
        Form_pg_attribute att = TupleDescAttr(desc, a);
        const std::string name = NameStr(att->attname);
        int t = -1, c = -1;
        if (std::sscanf(name.c_str(), "t%d_c%d", &t, &c) != 2 || t < 0 || c < 0 ||
            t >= static_cast<int>(header.tables.size()) ||
            c >= static_cast<int>(header.tables[static_cast<std::size_t>(t)].columns.size()))
            throw Error(sqlstate::kInvalidParameterValue,
                        "_backup_values has no column \"" + name + "\"");
        Wanted w;
        w.attribute = a;
        w.table = t;
        w.column =
            header.tables[static_cast<std::size_t>(t)].columns[static_cast<std::size_t>(c)].name;
        w.typmod = att->atttypmod;
        pg::pg_call([&] {
            Oid function = InvalidOid;
            getTypeInputInfo(att->atttypid, &function, &w.ioparam);
            fmgr_info(function, &w.input);
        });
        by_table[static_cast<std::size_t>(t)].push_back(static_cast<int>(wanted.size()));
        wanted.push_back(w);
    }

    MemoryContext row_memory = pg::pg_call([] {
        return AllocSetContextCreate(CurrentMemoryContext, "pg_batchguard restore row",
                                     ALLOCSET_DEFAULT_SIZES);
    });
    std::vector<Datum> values(static_cast<std::size_t>(natts));
    std::unique_ptr<bool[]> nulls(new bool[static_cast<std::size_t>(natts)]);
    // Per table: a reader of its wanted columns, and where each wanted value is in it.
    std::vector<RowValueReader> readers;
    std::vector<std::size_t> in_reader(wanted.size());
    for (std::size_t t = 0; t < header.tables.size(); ++t) {
        std::vector<std::string> columns;
        for (int w : by_table[t]) {
            const std::string& column = wanted[static_cast<std::size_t>(w)].column;
            std::size_t c = 0;
            while (c < columns.size() && columns[c] != column) ++c;
            if (c == columns.size()) columns.push_back(column);
            in_reader[static_cast<std::size_t>(w)] = c;
        }
        readers.emplace_back(std::move(columns));
    }
    HeaderSettings settings(header);
    while (std::optional<RowLine> row = stream.next_row()) {
        pg::check_for_interrupts();
        std::size_t t = 0;
        while (t < header.tables.size() && header.tables[t].name != row->table) ++t;
        readers[t].read(row->row);
        std::vector<std::string_view> changed;
        if (row->changed)
            for (const std::string& c : *row->changed) changed.push_back(c);
        pg::pg_call([&] {
            MemoryContext old = MemoryContextSwitchTo(row_memory);
            for (int a = 0; a < natts; ++a) nulls[a] = true;
            values[0] = Int32GetDatum(static_cast<int32>(t));
            nulls[0] = false;
            MemoryContextSwitchTo(old);
        });
        if (row->changed) {
            const Datum array = pg::make_text_array(changed);
            values[1] = array;
            nulls[1] = false;
        }
        pg::pg_call([&] {
            MemoryContext old = MemoryContextSwitchTo(row_memory);
            for (int w : by_table[t]) {
                Wanted& x = wanted[static_cast<std::size_t>(w)];
                const std::string* text = readers[t].value(in_reader[static_cast<std::size_t>(w)]);
                if (text == nullptr) continue;
                // UTF-8 in the file: verified and converted to the database's encoding.
                char* server =
                    pg_any_to_server(text->c_str(), static_cast<int>(text->size()), PG_UTF8);
                values[static_cast<std::size_t>(x.attribute)] =
                    InputFunctionCall(&x.input, server, x.ioparam, x.typmod);
                nulls[x.attribute] = false;
            }
            tuplestore_putvalues(rsinfo->setResult, desc, values.data(), nulls.get());
            MemoryContextSwitchTo(old);
            MemoryContextReset(row_memory);
        });
    }
    const std::string actual = file->sha256_hex();
    if (actual != record.file_sha256) sha256_mismatch(record, actual);
    return static_cast<Datum>(0);
}
