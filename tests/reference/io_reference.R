# Reference numbers for the data layer (cohort/io.py, cohort/summary.py), from R 4.2 + survival 3.5.
#
# Run from the repository root:   Rscript tests/reference/io_reference.R
# Writes (committed; CI never runs R):
#   tests/reference/io_lung.csv       survival::lung with an id, event coded 0/1, sex as text
#   tests/reference/io_reference.json counts, missing values, complete cases and reverse-KM median
#                                     follow-up for io_lung.csv (study io_lung_study.yaml) and
#                                     tests/data/rossi.csv (study tests/data/rossi_study.yaml)
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

# lung: NCCTG advanced lung cancer; several columns have missing values
l <- survival::lung
lung <- data.frame(
  id = sprintf("L%03d", seq_len(nrow(l))),
  time = l$time, death = l$status - 1L,             # status 1 = censored, 2 = dead
  age = l$age, sex = c("male", "female")[l$sex],
  ph_ecog = l$ph.ecog, ph_karno = l$ph.karno, wt_loss = l$wt.loss, meal_cal = l$meal.cal
)
write.csv(lung, "tests/reference/io_lung.csv", row.names = FALSE, na = "", quote = FALSE)
cand <- c("age", "sex", "ph_ecog", "ph_karno", "wt_loss")         # candidate: true in the study file
step1 <- lung[!(lung$age < 50), ]                                  # exclusion: age < 50
lung_analysed <- step1[complete.cases(step1[, cand]), ]
lung_out <- block(lung, "time", "death", lung_analysed)
lung_out$excluded_age <- sum(lung$age < 50)
lung_out$excluded_complete_case <- nrow(step1) - nrow(lung_analysed)

r <- read.csv("tests/data/rossi.csv")
rossi_analysed <- r[!(r$age < 18), ]
rossi_out <- block(r, "week", "arrest", rossi_analysed)

write_json(list(r_version = R.version.string, survival = as.character(packageVersion("survival")),
                lung = lung_out, rossi = rossi_out),
           "tests/reference/io_reference.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
