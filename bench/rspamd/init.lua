-- The global helpers rspamd's own rules/rspamd.lua sets up (multimap needs them), without
-- loading any of its rules: only compd's multimap rules run in this benchmark.
require "global_functions" ()
