"""Reader of the real Music Box raw logs, shared by the replay producer and the batch jobs.

Both must read logs identically (DESIGN 2, 3b), so the parsing rules live here, once:
`parse` (one line), `read` (files, days, directories), `quality` (collection artefacts).
"""

from musicbox.rawlogs.errors import NoLogFilesError, RawLogError, UnreadableLogError
from musicbox.rawlogs.names import LogFile, SkippedFile, find_log_files, parse_log_name, scan_log_dir
from musicbox.rawlogs.parse import LineContext, parse_line
from musicbox.rawlogs.quality import QualityReport, quality_report
from musicbox.rawlogs.read import group_by_day, iter_day, iter_file, iter_logs, select_logs
from musicbox.rawlogs.stats import ReadStats

__all__ = [
    "LineContext",
    "LogFile",
    "NoLogFilesError",
    "QualityReport",
    "RawLogError",
    "ReadStats",
    "SkippedFile",
    "UnreadableLogError",
    "find_log_files",
    "group_by_day",
    "iter_day",
    "iter_file",
    "iter_logs",
    "parse_line",
    "parse_log_name",
    "quality_report",
    "scan_log_dir",
    "select_logs",
]
