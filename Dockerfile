# Build: docker build -t pulse .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /pulse ./cmd/pulse

FROM gcr.io/distroless/static-debian12
COPY --from=build /pulse /pulse
VOLUME /data
EXPOSE 8080 9092
ENTRYPOINT ["/pulse", "run", "--data-dir", "/data", "--http", "0.0.0.0:8080"]
