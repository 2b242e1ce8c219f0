#include "core/backup_file_name.hpp"

#include <gtest/gtest.h>

using namespace batchguard;

TEST(BackupFileName, ParsesOurPattern) {
    auto p = parse_backup_file_name("0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b-742.jsonl.zst");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->backup_id, "0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b");
    EXPECT_EQ(p->xid, 742u);
    auto big = parse_backup_file_name(
        "0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b-18446744073709551615.jsonl.zst");
    ASSERT_TRUE(big);
    EXPECT_EQ(big->xid, UINT64_MAX);
}

TEST(BackupFileName, RejectsEverythingElse) {
    for (const char* name : {"", "x", "0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b-.jsonl.zst",
                             "0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b-742.jsonl",
                             "0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b-742.jsonl.zst.tmp",
                             "0B6F2C1E-8d3a-4e5f-9a7b-1c2d3e4f5a6b-742.jsonl.zst",
                             "0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b-0742.jsonl.zst",
                             "0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b-18446744073709551616.jsonl.zst",
                             "0b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b-7a2.jsonl.zst",
                             "0b6f2c1e_8d3a-4e5f-9a7b-1c2d3e4f5a6b-742.jsonl.zst",
                             "../b6f2c1e-8d3a-4e5f-9a7b-1c2d3e4f5a6b-742.jsonl.zst"})
        EXPECT_FALSE(parse_backup_file_name(name)) << name;
}

TEST(BackupFileName, DatabaseFolders) {
    EXPECT_EQ(parse_database_folder_name("16384"), 16384u);
    EXPECT_EQ(parse_database_folder_name("4294967295"), 4294967295u);
    for (const char* name : {"", "0", "016384", "4294967296", "16384x", "-1", ".", "..", "abc"})
        EXPECT_FALSE(parse_database_folder_name(name)) << name;
}
