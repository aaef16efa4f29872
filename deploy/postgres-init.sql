-- The DuckLake catalog gets its own database next to the Dagster instance's (`dagster`).
CREATE DATABASE jutsu_lake OWNER jutsu;
