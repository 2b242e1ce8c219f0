-- The data of bench/backup.sh and bench/storage.sh: :parents conversations with 5 messages
-- each (psql -v parents=N).
CREATE EXTENSION pg_batchguard;
CREATE TABLE conversation (id bigint PRIMARY KEY, title text NOT NULL, created_at timestamptz NOT NULL,
                           metadata jsonb);
CREATE TABLE message (id bigint PRIMARY KEY,
                      conversation_id bigint NOT NULL REFERENCES conversation ON DELETE CASCADE,
                      role text NOT NULL, content text NOT NULL, tokens int, created_at timestamptz NOT NULL);
CREATE INDEX ON message (conversation_id);
INSERT INTO conversation
SELECT g, 'Conversation about topic ' || (g % 997) || ' and ' || left(md5(g::text), 8),
       '2024-01-01'::timestamptz + g * interval '13 seconds',
       jsonb_build_object('template', 'tpl-' || (g % 50), 'model', 'm' || (g % 3), 'score', (g % 100) / 10.0)
  FROM generate_series(1, :parents) g;
INSERT INTO message
SELECT g, (g - 1) / 5 + 1, CASE WHEN g % 2 = 0 THEN 'assistant' ELSE 'user' END,
       'The ' || (ARRAY['quick','lazy','curious','careful','brave'])[g % 5 + 1] || ' model answered question '
       || g % 1000 || ' about ' || (ARRAY['databases','compression','backups','transactions','json'])[g % 5 + 1]
       || '. It explained the trade-offs in detail, with examples: ' || md5(g::text)
       || ' and more text to make it realistic.',
       50 + g % 400, '2024-01-01'::timestamptz + g * interval '3 seconds'
  FROM generate_series(1, :parents * 5) g;
VACUUM ANALYZE conversation, message;
