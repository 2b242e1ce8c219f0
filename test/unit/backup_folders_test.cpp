#include "core/backup_folders.hpp"

#include <gtest/gtest.h>

using namespace batchguard;

TEST(BackupFolders, FolderNames) {
    auto plain = parse_backup_folder_name("16384");
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->database, 16384u);
    EXPECT_EQ(plain->instance, "");
    auto copy = parse_backup_folder_name("16384-0123456789abcdef");
    ASSERT_TRUE(copy);
    EXPECT_EQ(copy->database, 16384u);
    EXPECT_EQ(copy->instance, "0123456789abcdef");
    EXPECT_EQ(backup_folder_name(16384, ""), "16384");
    EXPECT_EQ(backup_folder_name(16384, "0123456789abcdef"), "16384-0123456789abcdef");
    for (const char* name :
         {"", "0", "016384", "4294967296", "16384-", "16384-0123456789ABCDEF",
          "16384-0123456789abcde", "16384-0123456789abcdef0", "-0123456789abcdef", "quarantine",
          "..", "16384.dropped-5", "16384-0123456789abcdef/x"})
        EXPECT_FALSE(parse_backup_folder_name(name)) << name;
}

TEST(BackupFolders, DroppedFolderNames) {
    auto d = parse_dropped_folder_name("16384-0123456789abcdef.dropped-1700000000");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->folder, "16384-0123456789abcdef");
    EXPECT_EQ(d->dropped_at, 1700000000);
    EXPECT_EQ(dropped_folder_name("16384", 42), "16384.dropped-42");
    EXPECT_EQ(parse_dropped_folder_name(dropped_folder_name("7", 0))->folder, "7");
    for (const char* name : {"16384", "16384.dropped-", "16384.dropped-x", "x.dropped-5",
                             "16384.dropped-05", "16384.dropped-99999999999999999999"})
        EXPECT_FALSE(parse_dropped_folder_name(name)) << name;
}

TEST(BackupFolders, MarkerRoundTrip) {
    FolderMarker m{"0123456789abcdef", 7312345678901234567ULL, 16384,
                   "0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b"};
    const std::string text = format_folder_marker(m);
    auto parsed = parse_folder_marker(text);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->instance, m.instance);
    EXPECT_EQ(parsed->system_identifier, m.system_identifier);
    EXPECT_EQ(parsed->database, m.database);
    EXPECT_EQ(parsed->token, m.token);
    EXPECT_EQ(parsed->previous_system_identifier, 0u);
    m.previous_system_identifier = 42;  // adopted after pg_upgrade
    ASSERT_TRUE(parse_folder_marker(format_folder_marker(m)));
    EXPECT_EQ(parse_folder_marker(format_folder_marker(m))->previous_system_identifier, 42u);
    m.previous_system_identifier = 0;
    m.token.clear();  // a database still at 1.0 has no token
    ASSERT_TRUE(parse_folder_marker(format_folder_marker(m)));
    EXPECT_EQ(parse_folder_marker(format_folder_marker(m))->token, "");
}

TEST(BackupFolders, MarkerRejectsDamage) {
    const std::string good =
        format_folder_marker({"0123456789abcdef", 1, 5, "0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b"});
    for (std::size_t cut = 0; cut + 1 < good.size(); ++cut)
        EXPECT_FALSE(parse_folder_marker(good.substr(0, cut))) << cut;
    for (const char* text :
         {"", "pg_batchguard backup folder\n",
          "something else\ninstance 0123456789abcdef\nsystem_identifier 1\ndatabase 5\ntoken \n",
          "pg_batchguard backup folder\ninstance 0123456789ABCDEF\nsystem_identifier 1\ndatabase "
          "5\ntoken \n",
          "pg_batchguard backup folder\ninstance 0123456789abcdef\nsystem_identifier x\ndatabase "
          "5\ntoken \n",
          "pg_batchguard backup folder\ninstance 0123456789abcdef\nsystem_identifier 1\ndatabase "
          "0\ntoken \n",
          "pg_batchguard backup folder\ninstance 0123456789abcdef\nsystem_identifier 1\ndatabase "
          "5\ntoken nope\n",
          "pg_batchguard backup folder\ninstance 0123456789abcdef\ninstance "
          "0123456789abcdef\nsystem_identifier 1\ndatabase 5\ntoken \n"})
        EXPECT_FALSE(parse_folder_marker(text)) << text;
}

TEST(BackupFolders, InstanceRecord) {
    InstanceRecord r{"fedcba9876543210", 42, 2049, 131074};
    auto parsed = parse_instance_record(format_instance_record(r));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->instance, r.instance);
    EXPECT_EQ(parsed->system_identifier, 42u);
    EXPECT_EQ(parsed->device, 2049u);
    EXPECT_EQ(parsed->inode, 131074u);
    EXPECT_FALSE(
        parse_instance_record("pg_batchguard server instance\ninstance fedcba9876543210\n"));
    EXPECT_FALSE(parse_instance_record(
        "pg_batchguard server instance\ninstance fedcba9876543210\nsystem_identifier "
        "42\ndata_directory 2049\n"));
}
