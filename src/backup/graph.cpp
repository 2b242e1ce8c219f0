#include "backup/graph.hpp"

#include "core/error.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/transam.h"
#include "utils/typcache.h"
}

#include <map>

namespace batchguard::backup {

namespace {

pg::Statement table_info{
    "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relkind::pg_catalog.text"
    "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = $1",
    {OIDOID}};

pg::Statement columns_of{
    "SELECT a.attname::pg_catalog.text, pg_catalog.format_type(a.atttypid, a.atttypmod)"
    "  FROM pg_catalog.pg_attribute a"
    " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    {OIDOID}};

pg::Statement primary_key_of{
    "SELECT a.attname::pg_catalog.text, pg_catalog.format_type(a.atttypid, a.atttypmod),"
    "       a.atttypid"
    "  FROM pg_catalog.pg_index i"
    "  CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY"
    "       AS k(attnum, n)"
    "  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
    " WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.n",
    {OIDOID}};

// Top-level foreign keys that reference the table (or, for a partition, its ancestors).
pg::Statement references_to{
    "SELECT c.conrelid, c.conname::pg_catalog.text,"
    "       ARRAY(SELECT a.attname::pg_catalog.text"
    "               FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k(n, o)"
    "               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n"
    "              ORDER BY k.o),"
    "       ARRAY(SELECT a.attname::pg_catalog.text"
    "               FROM pg_catalog.unnest(c.confkey) WITH ORDINALITY AS k(n, o)"
    "               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n"
    "              ORDER BY k.o),"
    "       ARRAY(SELECT pg_catalog.format('OPERATOR(%I.%s)', s.nspname, o.oprname)"
    "               FROM pg_catalog.unnest(c.conpfeqop) WITH ORDINALITY AS k(op, i)"
    "               JOIN pg_catalog.pg_operator o ON o.oid = k.op"
    "               JOIN pg_catalog.pg_namespace s ON s.oid = o.oprnamespace"
    "              ORDER BY k.i),"
    "       c.confdeltype::pg_catalog.text"
    "  FROM pg_catalog.pg_constraint c"
    " WHERE c.contype = 'f' AND c.conparentid = 0"
    "   AND (c.confrelid = $1"
    "        OR c.confrelid IN (SELECT relid FROM pg_catalog.pg_partition_ancestors($1)))"
    " ORDER BY c.conrelid, c.conname",
    {OIDOID}};

pg::Statement operator_name{
    "SELECT pg_catalog.format('OPERATOR(%I.%s)', s.nspname, o.oprname)"
    "  FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace s ON s.oid = o.oprnamespace"
    " WHERE o.oid = $1",
    {OIDOID}};

std::string quote(const std::string& identifier) {
    const char* quoted = pg::pg_call([&] { return quote_identifier(identifier.c_str()); });
    return quoted;
}

std::vector<std::string> strings_of(const pg::Rows& rows, std::uint64_t row, int column) {
    std::vector<std::string> out;
    for (const auto& item : pg::text_array_elements(rows.datum(row, column).value()))
        out.emplace_back(item.value_or(""));
    return out;
}

struct Discovered {
    GraphTable table;
    char relkind = 'r';
    // Edges by parent relid (resolved to indexes once the order is known).
    struct RawEdge {
        Oid parent;
        GraphEdge edge;
    };
    std::vector<RawEdge> raw_edges;
};

GraphTable describe(pg::SpiSession& spi, Oid relid, char& relkind) {
    GraphTable t;
    t.relid = relid;
    pg::Rows info = spi.execute(table_info, {pg::Arg::of(ObjectIdGetDatum(relid))});
    if (info.empty()) throw Error(sqlstate::kUndefinedObject, "relation does not exist");
    t.name = info.text(0, 1).value();
    relkind = info.text(0, 2).value().at(0);
    pg::Rows columns = spi.execute(columns_of, {pg::Arg::of(ObjectIdGetDatum(relid))});
    for (std::uint64_t r = 0; r < columns.size(); ++r)
        t.columns.push_back({columns.text(r, 1).value(), columns.text(r, 2).value()});
    pg::Rows key = spi.execute(primary_key_of, {pg::Arg::of(ObjectIdGetDatum(relid))});
    for (std::uint64_t r = 0; r < key.size(); ++r) {
        t.key_columns.push_back(key.text(r, 1).value());
        t.key_types.push_back(key.text(r, 2).value());
    }
    return t;
}

// Deleting: a table's action is its strongest incoming reference (CASCADE, then RESTRICT /
// NO ACTION, then SET NULL, then SET DEFAULT); only the references of that action are
// kept, so the table's rows are exactly those that action touches.
void classify_for_delete(GraphTable& t) {
    auto has = [&](auto pred) {
        for (const auto* edges : {&t.edges, &t.self_edges})
            for (const GraphEdge& e : *edges)
                if (pred(e.on_delete)) return true;
        return false;
    };
    auto keep = [&](auto pred) {
        for (auto* edges : {&t.edges, &t.self_edges}) {
            std::vector<GraphEdge> kept;
            for (GraphEdge& e : *edges)
                if (pred(e.on_delete)) kept.push_back(std::move(e));
            *edges = std::move(kept);
        }
    };
    auto is = [](char c) { return [c](char a) { return a == c; }; };
    auto blocks = [](char a) { return a == 'a' || a == 'r'; };
    if (has(is('c'))) {
        t.action = "delete";
        keep(is('c'));
    } else if (has(blocks)) {
        t.action = "restrict";
        keep(blocks);
    } else if (has(is('n'))) {
        t.action = "set null";
        keep(is('n'));
    } else {
        t.action = "set default";
        keep(is('d'));
    }
    if (t.action == "set null" || t.action == "set default")
        for (const GraphEdge& e : t.edges)
            for (const auto& c : e.raw_columns) t.changed_columns.push_back(c);
}

}  // namespace

BackupGraph BackupGraph::build(pg::SpiSession& spi, Oid source, bool have_ids,
                               bool include_children, GraphMode mode) {
    const bool deleting = mode != GraphMode::kExport;
    std::vector<Discovered> found;
    std::map<Oid, int> index_of;
    auto add = [&](Oid relid) {
        Discovered d;
        d.table = describe(spi, relid, d.relkind);
        index_of[relid] = static_cast<int>(found.size());
        found.push_back(std::move(d));
    };
    add(source);
    const char kind = found[0].relkind;
    if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
        throw Error(sqlstate::kWrongObjectType, "\"" + found[0].table.name + "\" is not a table",
                    "export_backup reads ordinary and partitioned tables.");
    // pg_catalog, information_schema and the rest of initdb's relations are not user data
    if (source < FirstNormalObjectId)
        throw Error(sqlstate::kWrongObjectType, "\"" + found[0].table.name + "\" is a system table",
                    "export_backup reads user tables.");

    BackupGraph graph;
    graph.have_ids_ = have_ids;
    if (have_ids) {
        if (found[0].table.key_columns.size() != 1)
            throw Error(sqlstate::kInvalidParameterValue,
                        "table \"" + found[0].table.name +
                            "\" has no single-column primary key, so ids cannot select its rows",
                        {}, "Pass ids => NULL to back up every row you can read.");
        pg::Rows key_type = spi.execute(primary_key_of, {pg::Arg::of(ObjectIdGetDatum(source))});
        const Oid type = DatumGetObjectId(key_type.datum(0, 3).value());
        const Oid eq =
            pg::pg_call([&] { return lookup_type_cache(type, TYPECACHE_EQ_OPR)->eq_opr; });
        if (!OidIsValid(eq))
            throw Error(sqlstate::kWrongObjectType, "the primary key of \"" + found[0].table.name +
                                                        "\" has no equality operator");
        const std::string op =
            spi.execute(operator_name, {pg::Arg::of(ObjectIdGetDatum(eq))}).text(0, 1).value();
        // "%s" stands for the alias.
        graph.ids_condition_ = "%s." + quote(found[0].table.key_columns[0]) + " " + op +
                               " ANY ($1::pg_catalog.text[]::" + found[0].table.key_types[0] +
                               "[])";
    }

    // Breadth first through the tables that reference what is already found. Deleting,
    // only the source and tables reached through ON DELETE CASCADE are followed further
    // (repeated until nothing changes: a cascade can reach a table after it was passed).
    std::vector<bool> expanded;
    auto cascades_into = [&](std::size_t i) {
        if (i == 0 || !deleting) return true;
        for (const auto& e : found[i].raw_edges)
            if (e.edge.on_delete == 'c') return true;
        return false;
    };
    for (bool changed = true; include_children && changed;) {
        changed = false;
        for (std::size_t next = 0; next < found.size(); ++next) {
            if (expanded.size() < found.size()) expanded.resize(found.size(), false);
            if (expanded[next] || !cascades_into(next)) continue;
            expanded[next] = true;
            changed = true;
            const Oid parent = found[next].table.relid;
            pg::Rows refs = spi.execute(references_to, {pg::Arg::of(ObjectIdGetDatum(parent))});
            struct Ref {
                Oid child;
                GraphEdge edge;
            };
            std::vector<Ref> list;
            for (std::uint64_t r = 0; r < refs.size(); ++r) {
                pg::check_for_interrupts();
                Ref ref;
                ref.child = DatumGetObjectId(refs.datum(r, 1).value());
                ref.edge.constraint = refs.text(r, 2).value();
                ref.edge.raw_columns = strings_of(refs, r, 3);
                ref.edge.raw_parent_columns = strings_of(refs, r, 4);
                ref.edge.operators = strings_of(refs, r, 5);
                ref.edge.on_delete = refs.text(r, 6).value().at(0);
                const bool blocks = ref.edge.on_delete == 'a' || ref.edge.on_delete == 'r';
                if (mode == GraphMode::kDelete && blocks) continue;  // the delete fails on these
                list.push_back(std::move(ref));
            }
            for (Ref& ref : list) {
                for (const auto& c : ref.edge.raw_columns) ref.edge.columns.push_back(quote(c));
                for (const auto& c : ref.edge.raw_parent_columns)
                    ref.edge.parent_columns.push_back(quote(c));
                if (!index_of.count(ref.child)) add(ref.child);
                found[index_of[ref.child]].raw_edges.push_back({parent, std::move(ref.edge)});
            }
        }
    }

    // Order: every table after the tables it references (Kahn). A cycle through several
    // tables is cut where it closes: that foreign key is not followed.
    const int n = static_cast<int>(found.size());
    std::vector<int> order;
    std::vector<bool> placed(n, false);
    while (static_cast<int>(order.size()) < n) {
        int pick = -1;
        for (int i = 0; i < n && pick < 0; ++i) {
            if (placed[i]) continue;
            bool ready = true;
            for (const auto& e : found[i].raw_edges) {
                const int p = index_of[e.parent];
                if (p != i && !placed[p]) ready = false;
            }
            if (ready) pick = i;
        }
        if (pick < 0)  // a cycle: take the first table not placed yet
            for (int i = 0; i < n && pick < 0; ++i)
                if (!placed[i]) pick = i;
        placed[pick] = true;
        order.push_back(pick);
    }
    std::map<Oid, int> position;
    for (int i = 0; i < n; ++i) position[found[order[i]].table.relid] = i;
    for (int i = 0; i < n; ++i) {
        Discovered& d = found[order[i]];
        for (auto& e : d.raw_edges) {
            const int p = position[e.parent];
            e.edge.parent = p;
            if (p == i)
                d.table.self_edges.push_back(std::move(e.edge));
            else if (p < i)
                d.table.edges.push_back(std::move(e.edge));
            // else: closes a cycle of several tables, not followed
        }
        GraphTable t = std::move(d.table);
        t.relid = found[order[i]].table.relid;
        if (deleting && i > 0) classify_for_delete(t);
        if (deleting && i == 0) {  // the source: only cascading trees go with it
            std::vector<GraphEdge> kept;
            for (GraphEdge& e : t.self_edges)
                if (e.on_delete == 'c') kept.push_back(std::move(e));
            t.self_edges = std::move(kept);
        }
        graph.tables_.push_back(std::move(t));
    }
    // `FROM ONLY` for plain tables (inheritance children are separate tables).
    for (int i = 0; i < n; ++i)
        if (found[order[i]].relkind == RELKIND_PARTITIONED_TABLE) graph.partitioned_.insert(i);
    return graph;
}

std::string BackupGraph::from(int table) const {
    return (partitioned_.count(table) ? "" : "ONLY ") + tables_[table].name;
}

std::string BackupGraph::base_condition(int table, const std::string& alias, int& depth) const {
    if (table == 0) {
        if (!have_ids_) return "true";
        std::string c = ids_condition_;
        c.replace(c.find("%s"), 2, alias);
        return c;
    }
    const GraphTable& t = tables_[table];
    if (t.edges.empty()) return "false";
    std::string out;
    for (std::size_t e = 0; e < t.edges.size(); ++e) {
        if (e > 0) out += " OR ";
        out += edge_exists(table, t.edges[e], alias, depth);
    }
    return t.edges.size() > 1 ? "(" + out + ")" : out;
}

std::string BackupGraph::condition(int table, const std::string& alias, int& depth) const {
    std::string base = base_condition(table, alias, depth);
    if (base == "true" || tables_[table].self_edges.empty()) return base;
    std::string out = "(" + base;
    for (const GraphEdge& s : tables_[table].self_edges)
        out += " OR " + self_exists(table, s, alias, depth);
    return out + ")";
}

std::string BackupGraph::edge_exists(int table, const GraphEdge& edge, const std::string& alias,
                                     int& depth) const {
    (void)table;
    const std::string p = "bg_" + std::to_string(++depth);
    std::string out = "EXISTS (SELECT 1 FROM " + from(edge.parent) + " " + p + " WHERE ";
    for (std::size_t c = 0; c < edge.columns.size(); ++c) {
        if (c > 0) out += " AND ";
        out += p + "." + edge.parent_columns[c] + " " + edge.operators[c] + " " + alias + "." +
               edge.columns[c];
    }
    const std::string parent_condition = condition(edge.parent, p, depth);
    if (parent_condition != "true") out += " AND " + parent_condition;
    return out + ")";
}

std::string BackupGraph::self_exists(int table, const GraphEdge& edge, const std::string& alias,
                                     int& depth) const {
    const std::string id = std::to_string(++depth);
    const std::string r = "bg_r" + id, x = "bg_x" + id, y = "bg_y" + id, k = "bg_k" + id;
    std::string keys, x_refs, y_refs, join, match;
    for (std::size_t c = 0; c < edge.columns.size(); ++c) {
        const std::string sep = c > 0 ? ", " : "";
        const std::string and_ = c > 0 ? " AND " : "";
        keys += sep + "k" + std::to_string(c);
        x_refs += sep + x + "." + edge.parent_columns[c];
        y_refs += sep + y + "." + edge.parent_columns[c];
        join += and_ + r + ".k" + std::to_string(c) + " " + edge.operators[c] + " " + y + "." +
                edge.columns[c];
        match += and_ + k + ".k" + std::to_string(c) + " " + edge.operators[c] + " " + alias + "." +
                 edge.columns[c];
    }
    // Keys of the rows in the set, grown through the tree; UNION stops at cycles in the data.
    return "EXISTS (SELECT 1 FROM (WITH RECURSIVE " + r + "(" + keys + ") AS (SELECT " + x_refs +
           " FROM " + from(table) + " " + x + " WHERE " + base_condition(table, x, depth) +
           " UNION SELECT " + y_refs + " FROM " + from(table) + " " + y + " JOIN " + r + " ON " +
           join + ") SELECT * FROM " + r + ") " + k + " WHERE " + match + ")";
}

std::string BackupGraph::key_text(const GraphEdge& edge, const std::string& alias) const {
    if (edge.columns.size() == 1) return "(" + alias + "." + edge.columns[0] + ")::pg_catalog.text";
    std::string out = "pg_catalog.json_build_array(";
    for (std::size_t c = 0; c < edge.columns.size(); ++c)
        out += (c > 0 ? ", " : "") + alias + "." + edge.columns[c];
    return out + ")::pg_catalog.text";
}

std::vector<RowQuery> BackupGraph::queries(bool rows_only) const {
    std::vector<RowQuery> out;
    const std::string a = "bg_row";
    const std::string select = rows_only
                                   ? "SELECT NULL::pg_catalog.text, "
                                   : "SELECT pg_catalog.row_to_json(" + a + ")::pg_catalog.text, ";
    auto key_of = [&](const GraphEdge& edge) {
        return rows_only ? std::string("NULL::pg_catalog.text") : key_text(edge, a);
    };
    for (int t = 0; t < static_cast<int>(tables_.size()); ++t) {
        const GraphTable& table = tables_[t];
        const std::string from_clause = " FROM " + from(t) + " " + a + " WHERE ";
        int depth = 0;
        if (t == 0) {
            out.push_back(
                {0, -1, false,
                 select + "NULL::pg_catalog.text" + from_clause + base_condition(0, a, depth)});
        }
        // Each row once: through the first foreign key that reaches it.
        std::string not_before;
        for (std::size_t e = 0; e < table.edges.size(); ++e) {
            const std::string exists = edge_exists(t, table.edges[e], a, depth);
            out.push_back({t, static_cast<int>(e), false,
                           select + key_of(table.edges[e]) + from_clause + exists + not_before});
            not_before += " AND NOT " + exists;
        }
        if (base_condition(t, a, depth) == "true") continue;  // every row is in already
        std::string not_base = " AND NOT " + base_condition(t, a, depth);
        for (std::size_t s = 0; s < table.self_edges.size(); ++s) {
            const std::string exists = self_exists(t, table.self_edges[s], a, depth);
            out.push_back({t, static_cast<int>(s), true,
                           select + key_of(table.self_edges[s]) + from_clause + exists + not_base});
            not_base += " AND NOT " + exists;
        }
    }
    return out;
}

std::string BackupGraph::delete_sql() const {
    int depth = 0;
    return "DELETE FROM " + from(0) + " bg_row WHERE " + base_condition(0, "bg_row", depth);
}

std::vector<BackupTable> BackupGraph::header_tables() const {
    std::vector<BackupTable> out;
    for (const GraphTable& t : tables_) {
        BackupTable b{t.name, t.columns, t.key_columns, {}};
        for (const auto* edges : {&t.edges, &t.self_edges})
            for (const GraphEdge& e : *edges)
                b.references.push_back(
                    {tables_[e.parent].name, e.raw_columns, e.raw_parent_columns});
        out.push_back(std::move(b));
    }
    return out;
}

}  // namespace batchguard::backup
