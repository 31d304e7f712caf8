"""The optical flow settings by name, without torch or OpenCV: the command line lists them in
its help (start-up loads neither; see tests/test_startup.py)."""

# DIS settings by name: (OpenCV preset, finest pyramid scale solved; 0 is full resolution).
# "fine" is the default: OpenCV's own presets stop at half resolution or coarser, which costs
# about a quarter more warp error on the shared clips for about half the time
# (benchmarks/bench_flow.py); at full resolution DIS comes within a few percent of our
# Horn-Schunck on one-frame steps, beats it on three-frame steps, and is about 10x faster.
DIS_PRESETS = {"ultrafast": ("ULTRAFAST", None), "fast": ("FAST", None), "medium": ("MEDIUM", None),
               "fine": ("MEDIUM", 0)}
