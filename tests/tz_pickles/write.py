"""Write the pickles a peer running dateutil 2.x sends (ext types 123 and
125: its tzinfo, and a datetime in it), for tests/test_codec_tz_dateutil2.py.

Run by make.sh under Python 2.7 and 3 with a given dateutil installed;
written for both. Usage: python write.py OUTDIR
"""
import datetime
import os
import pickle
import sys

import dateutil
from dateutil import tz

out = sys.argv[1]
paris = tz.gettz('Europe/Paris')
assert type(paris) is tz.tzfile, type(paris)
# half an hour before the spring DST change (CET, +01:00)
when = datetime.datetime(2024, 3, 31, 1, 30, tzinfo=paris)
assert when.utcoffset() == datetime.timedelta(hours=1)
python = 'py%d.%d' % sys.version_info[:2]
# upstream pseud packs with pickle.HIGHEST_PROTOCOL: 2 on Python 2, 4 on
# 3.4 to 3.7, 5 since 3.8; older Python 3 peers' 3 as well
for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
    for kind, value in (('datetime', when), ('tzinfo', paris)):
        name = 'dateutil-%s-%s-p%d-%s.pickle' % (dateutil.__version__, python, protocol, kind)
        with open(os.path.join(out, name), 'wb') as f:
            f.write(pickle.dumps(value, protocol))
        print(name)
