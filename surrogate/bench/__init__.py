"""``surrogate bench``: benchmark grids of the papers, run as resumable Ray Tune trials
(``grid``), written up as the papers' tables (``table``); ``rllab``: Duan et al. 2016."""
