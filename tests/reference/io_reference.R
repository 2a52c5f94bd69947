# Reference numbers for the data layer (cohort/io.py, cohort/summary.py), from R 4.2 + survival 3.5.
#
# Run from the repository root:   Rscript tests/reference/io_reference.R
# Writes tests/reference/io_reference.json (committed; CI never runs R): counts, missing values,
# complete cases and reverse-KM median follow-up for
#   tests/studies/lung/lung.csv   (written by tests/studies/lung/export_lung.R) read with the study
#                                 file tests/reference/io_lung_study.yaml (an exclusion rule, age < 50)
#   tests/studies/rossi/rossi.csv (study tests/studies/rossi/study.yaml)
# Calls: is.na(), complete.cases(), survfit(Surv(time, 1 - event) ~ 1) and its median
# (reverse Kaplan-Meier, Schemper & Smith 1996).
suppressPackageStartupMessages({ library(survival); library(jsonlite) })

revkm_median <- function(time, event) {
  unname(summary(survfit(Surv(time, 1 - event) ~ 1))$table["median"])
}
block <- function(d, time, event, analysed) {
  list(
    n = nrow(d), events = sum(d[[event]]),
    median_followup = revkm_median(d[[time]], d[[event]]),
    missing = as.list(colSums(is.na(d))),
    n_analysed = nrow(analysed), events_analysed = sum(analysed[[event]]),
    median_followup_analysed = revkm_median(analysed[[time]], analysed[[event]])
  )
}

# lung: NCCTG advanced lung cancer (survival::lung); several columns have missing values
lung <- read.csv("tests/studies/lung/lung.csv")
cand <- c("age", "sex", "ph_ecog", "ph_karno", "wt_loss")         # candidate: true in the study file
step1 <- lung[!(lung$age < 50), ]                                  # exclusion: age < 50
lung_analysed <- step1[complete.cases(step1[, cand]), ]
lung_out <- block(lung, "time", "status", lung_analysed)
lung_out$excluded_age <- sum(lung$age < 50)
lung_out$excluded_complete_case <- nrow(step1) - nrow(lung_analysed)

r <- read.csv("tests/studies/rossi/rossi.csv")
rossi_analysed <- r                                # no exclusion, no missing value
rossi_out <- block(r, "week", "arrest", rossi_analysed)

write_json(list(r_version = R.version.string, survival = as.character(packageVersion("survival")),
                lung = lung_out, rossi = rossi_out),
           "tests/reference/io_reference.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
