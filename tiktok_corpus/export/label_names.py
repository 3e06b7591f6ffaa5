"""The paper's label definitions as plain values, apart from the pandas code of :mod:`.labels` that
computes them: the export's options (and so the CLI's help) read them without loading pandas."""

# Order matters: it is the order of the paper's weights (comments, likes, plays, shares).
METRICS = ("comment_count", "like_count", "play_count", "share_count")
PAPER_WEIGHTS = (0.1, 0.4, 0.3, 0.2)
PAPER_THRESHOLD_QUANTILE = 0.5
# The column that holds each label an export can be made for; training reads its target through it.
LABEL_COLUMNS = {"binary": "is_viral", "continuous": "virality_score"}
