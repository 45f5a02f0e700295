import os
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GLOG_minloglevel", "2")
# MDTC's oneDNN predictor can deadlock after corrupting the heap; don't wait 120 s for it
os.environ.setdefault("SPEECH_PIR_EXPORT_PREDICT_TIMEOUT", "45")
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
